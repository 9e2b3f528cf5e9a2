// The operator's brand, read from GET /brand.json at start-up (sfu serve --brand-*): site name,
// accent colour, logo and links. Checked again here; text is set with textContent, the colour only
// when it is a CSS hex colour, links only when they are http(s) (or mailto: for contact).

import { el } from './dom.js';
import { setText } from './i18n.js';

/** @typedef {{rules?: string, privacy?: string, contact?: string}} BrandLinks */
/** @typedef {{name: string, accent: string | null, logo: string | null, links: BrandLinks}} Brand */

/** @type {Brand} what the page shows when the server says nothing */
export const DEFAULT_BRAND = Object.freeze({ name: 'Roulette', accent: null, logo: null, links: Object.freeze({}) });
const HEX = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;
/** The page's own accent (style.css): nothing to change when the brand keeps it. */
const DEFAULT_ACCENT = '#6d5dfc';
const MAX_NAME = 60;
/** Footer links, in order, with the key of their text. */
const LINKS = /** @type {const} */ ([['rules', 'links.rules'], ['privacy', 'links.privacy'], ['contact', 'links.contact']]);

/**
 * @param {unknown} value
 * @param {boolean} [mail]  mailto: allowed
 * @returns {string | null}
 */
function safeUrl(value, mail = false) {
  if (typeof value !== 'string' || !value) return null;
  try {
    const url = new URL(value, window.location.href);
    const ok = url.protocol === 'https:' || url.protocol === 'http:' || (mail && url.protocol === 'mailto:');
    return ok ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * What the server sent, checked; anything odd falls back to the default.
 * @param {any} data
 * @returns {Brand}
 */
export function checkBrand(data) {
  if (!data || typeof data !== 'object') return DEFAULT_BRAND;
  const name = typeof data.name === 'string' ? data.name.replace(/\p{Cc}/gu, ' ').trim().slice(0, MAX_NAME) : '';
  const links = data.links && typeof data.links === 'object' ? data.links : {};
  /** @type {BrandLinks} */
  const checked = {};
  for (const [kind] of LINKS) {
    const url = safeUrl(links[kind], kind === 'contact');
    if (url) checked[kind] = url;
  }
  return {
    name: name || DEFAULT_BRAND.name,
    accent: typeof data.accent === 'string' && HEX.test(data.accent) ? data.accent : null,
    logo: safeUrl(data.logo),
    links: checked,
  };
}

/** @returns {Promise<Brand>} */
export async function loadBrand(url = './brand.json') {
  try {
    const response = await fetch(url, { cache: 'no-cache' });
    if (!response.ok) return DEFAULT_BRAND;
    return checkBrand(await response.json());
  } catch {
    return DEFAULT_BRAND; // e.g. the page served without the server: defaults
  }
}

/** "#abc" → [r, g, b] */
function rgb(hex) {
  const h = hex.length === 4 ? [...hex.slice(1)].map((c) => c + c).join('') : hex.slice(1);
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
}

/** Black or white, whichever reads better on `hex` (WCAG relative luminance). */
export function inkFor(hex) {
  const [r, g, b] = rgb(hex).map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return luminance > 0.35 ? '#000000' : '#ffffff';
}

/**
 * Show the brand: header name and logo, accent colour (CSS variables and the tab icon), links.
 * The title is set by the page with the text key 'page.title' (it is translated).
 * @param {Brand} brand
 * @param {{root: HTMLElement, name: HTMLElement, mark: HTMLElement, logo: HTMLImageElement, links: HTMLElement}} els
 */
export function applyBrand(brand, { root, name, mark, logo, links }) {
  name.textContent = brand.name;
  root.setAttribute('aria-label', brand.name);
  document.body.dataset.brand = brand.name === DEFAULT_BRAND.name ? 'default' : 'custom';

  if (brand.logo) {
    logo.src = brand.logo;
    logo.hidden = false;
    mark.hidden = true;
  }

  if (brand.accent && brand.accent.toLowerCase() !== DEFAULT_ACCENT) {
    const style = document.documentElement.style;
    const a = brand.accent;
    style.setProperty('--accent', a);
    style.setProperty('--accent-2', `color-mix(in srgb, ${a} 78%, white)`);
    style.setProperty('--accent-3', `color-mix(in srgb, ${a} 65%, white)`);
    style.setProperty('--accent-hover', `color-mix(in srgb, ${a} 88%, white)`);
    style.setProperty('--accent-ink', inkFor(a));
    const icon = /** @type {HTMLLinkElement | null} */ (document.querySelector('link[rel="icon"]'));
    if (icon) icon.href = icon.href.replace(/%236d5dfc/gi, encodeURIComponent(a));
  }

  const items = [];
  for (const [kind, key] of LINKS) {
    const href = brand.links[kind];
    if (!href) continue;
    const a = /** @type {HTMLAnchorElement} */ (el('a', { cls: 'site-links__link', attrs: { href, rel: 'noopener noreferrer', target: '_blank' } }));
    a.dataset.link = kind;
    setText(a, key);
    items.push(a);
  }
  links.replaceChildren(...items);
  links.hidden = items.length === 0;
}
