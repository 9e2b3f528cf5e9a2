// What the visitor asks of a partner: interests as chips, "only common interests", and the
// language to talk in. Remembered in localStorage; every change is an event, so the page can hand
// the new preferences to the protocol client. Tags are always shown with textContent.
//
// Keyboard: Enter or a comma adds what was typed; Backspace in the empty field removes the last
// chip; each chip has its own remove button (Delete / Backspace on it removes it too).
//
// Events (CustomEvent):
//   'change'  {interests, languages, strict}   the preferences to send with start / next

import { el } from './dom.js';
import { i18n, setAttr, setText, t } from './i18n.js';
import { MAX_INTERESTS, addInterests, cleanInterests } from './interests.js';

const STORE = { interests: 'sfu.interests', strict: 'sfu.strict', language: 'sfu.match_language' };
/** Languages one may pick to talk in (besides the browser's own and "any"). */
const MATCH_LANGUAGES = ['en', 'es', 'pt', 'fr', 'de', 'it', 'ru', 'uk', 'tr', 'pl', 'nl', 'ar', 'fa', 'hi', 'id', 'ja', 'ko', 'zh'];
/** @type {Record<string, string>} what the field says after a refused addition */
const PROBLEM_TEXT = {
  too_long: 'interests.too_long',
  too_many: 'interests.too_many',
  duplicate: 'interests.duplicate',
};

/** The browser's languages, primary subtags, in order, without duplicates (at most 8). */
export function browserLanguages(tags = navigator.languages || [navigator.language]) {
  const out = [];
  for (const tag of tags) {
    const primary = String(tag || '').trim().toLowerCase().split(/[-_]/)[0];
    if (/^[a-z]{2,3}$/.test(primary) && !out.includes(primary)) out.push(primary);
  }
  return out.slice(0, 8);
}

/** A language's name in the page's language (its code when the browser cannot name it). */
function languageName(code) {
  try {
    const name = new Intl.DisplayNames([i18n.lang], { type: 'language' }).of(code);
    return name && name !== code ? name : code;
  } catch {
    return code;
  }
}

export class PreferencesPanel extends EventTarget {
  /**
   * @param {object} els
   * @param {HTMLDetailsElement} els.root      #prefs
   * @param {HTMLElement} els.summaryCount     the number of interests in the panel's summary
   * @param {HTMLUListElement} els.chips       #interest-chips
   * @param {HTMLInputElement} els.input       #interest-input
   * @param {HTMLElement} els.message          #interest-message (aria-live)
   * @param {HTMLInputElement} els.strict      #strict
   * @param {HTMLSelectElement} els.language   #match-language
   */
  constructor({ root, summaryCount, chips, input, message, strict, language }) {
    super();
    this.root = root;
    this.summaryCount = summaryCount;
    this.chips = chips;
    this.input = input;
    this.message = message;
    this.strictBox = strict;
    this.languageSelect = language;
    /** @type {string[]} */
    this.interests = cleanInterests(readJson(STORE.interests));
    /** @type {null | 'too_long' | 'too_many' | 'duplicate'} why the last addition was refused */
    this.lastProblem = null;
    this.strict = safeGet(STORE.strict) === 'true';
    this.language = safeGet(STORE.language) || 'auto';
    if (this.language !== 'auto' && this.language !== 'any' && !MATCH_LANGUAGES.includes(this.language)) {
      this.language = 'auto';
    }

    input.addEventListener('keydown', (e) => this._onKey(e));
    input.addEventListener('input', () => {
      // Commas typed on phone keyboards (no key events) or pasted: add what comes before the last.
      const value = input.value;
      const cut = Math.max(value.lastIndexOf(','), value.lastIndexOf('，'), value.lastIndexOf('、'));
      if (cut >= 0) {
        input.value = value.slice(cut + 1);
        this.add(value.slice(0, cut));
      }
    });
    input.addEventListener('blur', () => this._addTyped());
    strict.addEventListener('change', () => {
      this.strict = strict.checked;
      safeSet(STORE.strict, String(this.strict));
      this._changed();
    });
    language.addEventListener('change', () => {
      this.language = language.value;
      safeSet(STORE.language, this.language);
      this._changed();
    });
    this.render();
  }

  /** What to send with start / next. */
  get value() {
    let languages;
    if (this.language === 'any') languages = 'any';
    else if (this.language === 'auto') languages = browserLanguages();
    else languages = [this.language];
    return { interests: [...this.interests], languages, strict: this.strict && this.interests.length > 0 };
  }

  /**
   * Add one tag, or several separated by commas.
   * @param {string} typed
   * @returns {boolean} whether anything was added
   */
  add(typed) {
    const { list, added, problem } = addInterests(this.interests, typed);
    this.lastProblem = problem;
    if (problem) this._say(PROBLEM_TEXT[problem], { max: MAX_INTERESTS });
    if (!added.length) return false;
    this.interests = list;
    if (!problem) this._say('interests.added', { tags: added });
    this._saved();
    return true;
  }

  /** @param {string} tag */
  remove(tag) {
    const index = this.interests.indexOf(tag);
    if (index < 0) return;
    this.interests = this.interests.filter((x) => x !== tag);
    this._say('interests.removed', { tag });
    this._saved();
    // Keep the keyboard where it was: the next chip's button, else the previous one, else the field.
    const buttons = [...this.chips.querySelectorAll('button')];
    const target = /** @type {HTMLElement | undefined} */ (buttons[index] || buttons[index - 1]) || this.input;
    target.focus();
  }

  /** Draw chips, the checkbox and the language list (also after a language change). */
  render() {
    this.chips.replaceChildren(...this.interests.map((tag) => this._chip(tag)));
    this.chips.hidden = this.interests.length === 0;
    this.summaryCount.textContent = this.interests.length ? String(this.interests.length) : '';
    this.strictBox.checked = this.strict;
    this.strictBox.disabled = this.interests.length === 0;
    this._renderLanguages();
  }

  /** @param {string} tag */
  _chip(tag) {
    const remove = el('button', { cls: 'chip__remove', attrs: { type: 'button' } }, ['×']);
    setAttr(remove, 'aria-label', 'interests.remove', { tag });
    setAttr(remove, 'title', 'interests.remove', { tag });
    remove.addEventListener('click', () => this.remove(tag));
    remove.addEventListener('keydown', (e) => {
      if (e.key === 'Delete' || e.key === 'Backspace') {
        e.preventDefault();
        this.remove(tag);
      }
    });
    return el('li', { cls: 'chip' }, [el('span', { cls: 'chip__text', text: tag }), remove]);
  }

  _renderLanguages() {
    const mine = browserLanguages();
    const options = [
      option('auto', t('prefs.language_mine', { languages: mine.map(languageName) })),
      option('any', t('prefs.language_any')),
      ...MATCH_LANGUAGES.map((code) => {
        const o = option(code, languageName(code));
        o.lang = code;
        return o;
      }),
    ];
    this.languageSelect.replaceChildren(...options);
    this.languageSelect.value = this.language;
  }

  /** @param {KeyboardEvent} e */
  _onKey(e) {
    if (e.isComposing) return;
    if (e.key === 'Enter' || e.key === ',') {
      e.preventDefault();
      this._addTyped();
    } else if (e.key === 'Backspace' && this.input.value === '' && this.interests.length) {
      e.preventDefault();
      const last = this.interests[this.interests.length - 1];
      this.interests = this.interests.slice(0, -1);
      this._say('interests.removed', { tag: last });
      this._saved();
    }
  }

  /** Add what is in the field; it is emptied unless it needs fixing (e.g. too long). */
  _addTyped() {
    if (!this.input.value.trim()) return;
    if (this.add(this.input.value) || this.lastProblem === 'duplicate') this.input.value = '';
    this.input.setAttribute('aria-invalid', String(!!this.lastProblem && this.lastProblem !== 'duplicate'));
  }

  /**
   * @param {string} key
   * @param {Record<string, unknown>} [params]
   */
  _say(key, params) {
    setText(this.message, key, params);
  }

  _saved() {
    safeSet(STORE.interests, JSON.stringify(this.interests));
    this.render();
    this._changed();
  }

  _changed() {
    this.dispatchEvent(new CustomEvent('change', { detail: this.value }));
  }
}

/**
 * @param {string} value
 * @param {string} text
 */
function option(value, text) {
  const o = /** @type {HTMLOptionElement} */ (el('option', { text }));
  o.value = value;
  return o;
}

function readJson(key) {
  try { return JSON.parse(safeGet(key) || 'null'); } catch { return null; }
}
function safeGet(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}
function safeSet(key, value) {
  try { localStorage.setItem(key, value); } catch { /* private mode: remembered for this visit only */ }
}
