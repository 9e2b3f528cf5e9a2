// The page-language switcher (#language, a <select> in the top bar): lists every catalog in its own
// language; a choice is remembered (localStorage) and applied at once.

import { LANGUAGES, i18n } from './i18n.js';
import { el } from './dom.js';

export class LanguageSwitcher {
  /** @param {HTMLSelectElement} select */
  constructor(select) {
    this.select = select;
    select.replaceChildren(...Object.entries(LANGUAGES).map(([code, name]) => {
      const o = /** @type {HTMLOptionElement} */ (el('option', { text: name }));
      o.value = code;
      o.lang = code;
      return o;
    }));
    select.value = i18n.lang;
    select.addEventListener('change', () => i18n.load(select.value, { remember: true }));
    i18n.addEventListener('change', () => { select.value = i18n.lang; });
  }
}
