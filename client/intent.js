// What the user asks of the server when looking for a partner, without the DOM: their preferences
// (docs/protocol.md) as the protocol client keeps them, the `start` / `next` messages that carry them,
// and the errors with which the server refuses them.

/**
 * What the user asks of a partner, sent with every `start` and `next`.
 * @typedef {{interests: string[], languages: string[] | 'any', strict: boolean}} Preferences
 */

/** Preferences the server refused: the `start` or `next` that carried them was ignored. */
export const PREFERENCE_CODES = Object.freeze([
  'bad_interests', 'too_many_interests', 'interest_too_long', 'bad_languages', 'too_many_languages', 'bad_strict',
]);

/**
 * The caller's preferences as a copy of their own, missing parts filled in (null: none stated).
 * @param {Partial<Preferences> | null | undefined} preferences
 * @returns {Preferences | null}
 */
export function copyPreferences(preferences) {
  if (!preferences) return null;
  return {
    interests: [...(preferences.interests || [])],
    languages: preferences.languages === 'any' ? 'any' : [...(preferences.languages || [])],
    strict: !!preferences.strict,
  };
}

/**
 * Whether two copies (see copyPreferences) ask the same, in the same order.
 * @param {Preferences | null} a
 * @param {Preferences | null} b
 */
export function samePreferences(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The `start` or `next` message, with the user's preferences when stated.
 * @param {'start' | 'next'} type
 * @param {Preferences | null} preferences
 */
export function intentMessage(type, preferences) {
  return preferences ? { type, ...preferences } : { type };
}
