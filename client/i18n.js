// The page's words, in the visitor's language. No build step: one catalog per language,
// client/locales/<lang>.js, each an ES module whose default export maps keys to strings.
// English (en.js) is complete by definition and the fallback for any key a catalog lacks.
//
//   import { i18n, t, setText, setAttr } from './i18n.js';
//   await i18n.load();                  // picks the saved choice or the browser's languages
//   t('status.waiting')                 // "Looking for a partner…"
//   t('common.you_both_like', { tags: ['x', 'y'] })  // placeholders in {braces}; lists as "x and y"
//   setText(node, 'status.waiting')     // textContent now, and again whenever the language changes
//   setAttr(node, 'title', 'media.mute')
//   i18n.apply(document)                // fills [data-i18n] (+ data-i18n-params, JSON) and
//                                       // [data-i18n-attr] ("title:key;aria-label:key", + data-i18n-attr-params)
//
// Text is always set with textContent / setAttribute, never as HTML.

import en from './locales/en.js';

/** Languages with a catalog, in the order the switcher lists them (each in its own language). */
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

/** The primary language subtag of a BCP-47 tag ("pt-BR" → "pt"). */
export function primaryLanguage(tag) {
  return String(tag || '').trim().toLowerCase().split(/[-_]/)[0];
}

/** Whether a language is written right to left. */
export function isRtl(lang) {
  return RTL.has(primaryLanguage(lang));
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
      const primary = primaryLanguage(tag);
      if (primary in LANGUAGES) return primary;
    }
    return 'en';
  }

  /** Load a catalog (default: the picked language); `remember` saves an explicit choice. */
  async load(lang = this.pick(), { remember = false } = {}) {
    if (!(lang in LANGUAGES)) lang = 'en';
    let catalog = en;
    if (lang !== 'en') {
      try {
        catalog = (await import(`./locales/${lang}.js`)).default;
      } catch (err) {
        console.warn('could not load the catalog, using English', lang, err);
        lang = 'en';
      }
    }
    this.catalog = catalog;
    this.lang = lang;
    if (remember) safeSet(STORAGE_KEY, lang);
    document.documentElement.lang = lang;
    document.documentElement.dir = isRtl(lang) ? 'rtl' : 'ltr';
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
    return this.format(text, params);
  }

  /** Fill {placeholders}: numbers in the current locale, arrays as a list ("a, b and c"). */
  format(text, params) {
    if (!params) return text;
    return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? this.value(params[name]) : whole));
  }

  /** @param {unknown} value */
  value(value) {
    if (Array.isArray(value)) return this.list(value.map(String));
    if (typeof value === 'number') return value.toLocaleString(this.lang);
    return String(value);
  }

  /** @param {string[]} items */
  list(items) {
    try {
      return new Intl.ListFormat(this.lang, { style: 'long', type: 'conjunction' }).format(items);
    } catch {
      return items.join(', ');
    }
  }

  /** Fill every element under `root` that names its text by key. */
  apply(root = document) {
    for (const node of root.querySelectorAll('[data-i18n]')) {
      node.textContent = this.t(node.dataset.i18n, readParams(node.dataset.i18nParams));
    }
    for (const node of root.querySelectorAll('[data-i18n-attr]')) {
      const params = readParams(node.dataset.i18nAttrParams);
      for (const [attr, key] of attrPairs(node.dataset.i18nAttr)) node.setAttribute(attr, this.t(key, params));
    }
  }
}

/** @param {string | undefined} json */
function readParams(json) {
  if (!json) return undefined;
  try { return JSON.parse(json); } catch { return undefined; }
}

/** "title:a.b;aria-label:c.d" → [["title", "a.b"], ["aria-label", "c.d"]] */
function attrPairs(spec = '') {
  return spec.split(';').map((pair) => pair.split(':').map((s) => s.trim())).filter(([a, k]) => a && k);
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

/**
 * Show `key`'s text in `node` now and after every language change (the key is kept on the node).
 * @param {HTMLElement} node
 * @param {string} key
 * @param {Record<string, unknown>} [params]
 */
export function setText(node, key, params) {
  node.dataset.i18n = key;
  if (params) node.dataset.i18nParams = JSON.stringify(params);
  else delete node.dataset.i18nParams;
  node.textContent = i18n.t(key, params);
}

/**
 * Set attribute `attr` of `node` to `key`'s text, now and after every language change.
 * @param {HTMLElement} node
 * @param {string} attr
 * @param {string} key
 * @param {Record<string, unknown>} [params]  shared by every translated attribute of the node
 */
export function setAttr(node, attr, key, params) {
  const pairs = attrPairs(node.dataset.i18nAttr).filter(([a]) => a !== attr);
  pairs.push([attr, key]);
  node.dataset.i18nAttr = pairs.map(([a, k]) => `${a}:${k}`).join(';');
  if (params) node.dataset.i18nAttrParams = JSON.stringify(params);
  node.setAttribute(attr, i18n.t(key, params));
}
