// The page's words, in the visitor's language. No build step: one catalog per language,
// client/locales/<lang>.js, each an ES module whose default export maps keys to strings.
// English (en.js) is complete by definition and the fallback for any key a catalog lacks.
//
//   import { i18n, t } from './i18n.js';
//   await i18n.load();                 // picks the saved choice or the browser's languages
//   t('status.waiting')                // "Looking for a partner…"
//   t('chat.common', { tags: 'x, y' }) // placeholders in {braces}
//   i18n.apply(document)               // fills [data-i18n], [data-i18n-attr] (e.g. "title:key;aria-label:key")

import en from './locales/en.js';

/** Languages with a catalog, in the order the switcher lists them. */
export const LANGUAGES = Object.freeze({
  en: 'English',
  fr: 'Français',
  es: 'Español',
  pt: 'Português',
  de: 'Deutsch',
  ru: 'Русский',
  tr: 'Türkçe',
});
const RTL = new Set(['ar', 'fa', 'he', 'ur']);
const STORAGE_KEY = 'sfu.lang';

function format(text, params) {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export class I18n extends EventTarget {
  constructor() {
    super();
    this.lang = 'en';
    /** @type {Record<string, string>} */
    this.catalog = en;
  }

  /** The language to use: the visitor's saved choice, else the first browser language we have. */
  pick(saved = safeGet(STORAGE_KEY), browser = navigator.languages || [navigator.language]) {
    if (saved && saved in LANGUAGES) return saved;
    for (const tag of browser) {
      const primary = String(tag || '').toLowerCase().split('-')[0];
      if (primary in LANGUAGES) return primary;
    }
    return 'en';
  }

  /** Load a catalog (default: the picked language); `remember` saves an explicit choice. */
  async load(lang = this.pick(), { remember = false } = {}) {
    if (!(lang in LANGUAGES)) lang = 'en';
    this.catalog = lang === 'en' ? en : (await import(`./locales/${lang}.js`)).default;
    this.lang = lang;
    if (remember) safeSet(STORAGE_KEY, lang);
    document.documentElement.lang = lang;
    document.documentElement.dir = RTL.has(lang) ? 'rtl' : 'ltr';
    this.dispatchEvent(new CustomEvent('change', { detail: { lang } }));
    return lang;
  }

  /** The text for `key` in the current language (English if missing; the key itself if unknown). */
  t(key, params) {
    const text = this.catalog[key] ?? en[key];
    if (text === undefined) {
      console.warn('missing text', key);
      return key;
    }
    return format(text, params);
  }

  /** Fill every element under `root` that names its text by key. */
  apply(root = document) {
    for (const node of root.querySelectorAll('[data-i18n]')) node.textContent = this.t(node.dataset.i18n);
    for (const node of root.querySelectorAll('[data-i18n-attr]')) {
      for (const pair of node.dataset.i18nAttr.split(';')) {
        const [attr, key] = pair.split(':').map((s) => s.trim());
        if (attr && key) node.setAttribute(attr, this.t(key));
      }
    }
  }
}

function safeGet(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}
function safeSet(key, value) {
  try { localStorage.setItem(key, value); } catch { /* private mode: the choice lasts this visit */ }
}

/** The page's one translator. */
export const i18n = new I18n();
export const t = (key, params) => i18n.t(key, params);
