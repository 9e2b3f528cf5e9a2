// Interest tags as the server sees them (sfu/pairing/preferences.py): normalised for caseless
// comparison, at most MAX_INTERESTS of at most MAX_INTEREST_LENGTH characters. No DOM.

export const MAX_INTERESTS = 10;
export const MAX_INTEREST_LENGTH = 32;

// Characters that would let one person's tag reorder or hide text around it on another's screen.
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const CONTROL = /\p{Cc}/gu;

/** Full case folding (Python's str.casefold) where JavaScript's lower case differs from it. */
const FOLD = {
  'ß': 'ss', 'ẞ': 'ss', 'ς': 'σ', 'ϐ': 'β', 'ϑ': 'θ', 'ϕ': 'φ', 'ϖ': 'π', 'ϰ': 'κ', 'ϱ': 'ρ', 'ϵ': 'ε',
  '\u0345': 'ι', 'ᲀ': 'в', 'ᲁ': 'д', 'ᲂ': 'о', 'ᲃ': 'с', 'ᲄ': 'т', 'ᲅ': 'т', 'ᲆ': 'ъ', 'ᲇ': 'ѣ', 'ᲈ': 'ꙋ',
};
const FOLDED = new RegExp(`[${Object.keys(FOLD).join('')}]`, 'gu');
// Cherokee folds to its capital letters.
const CHEROKEE_SMALL = /[\uab70-\uabbf\u13f8-\u13fd]/gu;
/** What Python's str.split() splits on. */
const SPACES = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

/** @param {string} text */
function casefold(text) {
  return text.toLowerCase()
    .normalize('NFD') // iota subscripts become U+0345, which folds to ι
    .replace(FOLDED, (c) => FOLD[c])
    .replace(CHEROKEE_SMALL, (c) => {
      const code = c.codePointAt(0);
      return String.fromCodePoint(code >= 0xab70 ? code - 0xab70 + 0x13a0 : code - 8);
    });
}

/**
 * The comparable form of one tag ('' when nothing is left): NFKC, case folded, bidirectional
 * controls removed, control characters as spaces, white space trimmed and collapsed.
 * @param {string} raw
 */
export function normaliseInterest(raw) {
  let text = casefold(String(raw).normalize('NFKC')).normalize('NFKC');
  text = text.replace(BIDI_CONTROLS, '').replace(CONTROL, ' ');
  return text.split(SPACES).filter(Boolean).join(' ');
}

/** Length in characters (code points), as the server counts. */
export const length = (text) => [...text].length;

/**
 * Add what the user typed (one tag, or several separated by commas) to `list`.
 * @param {string[]} list  normalised tags
 * @param {string} typed
 * @returns {{list: string[], added: string[], problem: null | 'too_long' | 'too_many' | 'duplicate'}}
 */
export function addInterests(list, typed) {
  const out = [...list];
  const added = [];
  /** @type {null | 'too_long' | 'too_many' | 'duplicate'} */
  let problem = null;
  for (const part of String(typed).split(/[,，、]/)) {
    const tag = normaliseInterest(part);
    if (!tag) continue;
    if (length(tag) > MAX_INTEREST_LENGTH) problem = 'too_long';
    else if (out.includes(tag)) problem = problem || 'duplicate';
    else if (out.length >= MAX_INTERESTS) problem = 'too_many';
    else {
      out.push(tag);
      added.push(tag);
    }
  }
  return { list: out, added, problem };
}

/**
 * Tags read back from storage: strings only, normalised, bounded, without duplicates.
 * @param {unknown} value
 * @returns {string[]}
 */
export function cleanInterests(value) {
  if (!Array.isArray(value)) return [];
  const out = [];
  for (const item of value) {
    if (typeof item !== 'string') continue;
    const tag = normaliseInterest(item);
    if (tag && length(tag) <= MAX_INTEREST_LENGTH && !out.includes(tag)) out.push(tag);
    if (out.length >= MAX_INTERESTS) break;
  }
  return out;
}
