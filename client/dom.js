// Small DOM helpers. Everything that shows user- or server-provided text uses textContent.

/**
 * querySelector that fails loudly: every element the page's code uses must exist.
 * @param {string} sel
 * @param {ParentNode} [root]
 * @returns {any}
 */
export const $ = (sel, root = document) => {
  const node = root.querySelector(sel);
  if (!node) throw new Error(`missing element ${sel}`);
  return node;
};

/**
 * createElement with class and text (always textContent, never HTML).
 * @param {string} tag
 * @param {{cls?: string, text?: unknown, attrs?: Record<string, string>}} [opts]
 * @param {(Node | string)[]} [children]
 * @returns {HTMLElement}
 */
export function el(tag, { cls, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

/**
 * Fill a device <select>; disabled with one `emptyLabel` option when there is nothing to choose.
 * @param {HTMLSelectElement} select
 * @param {{id: string, label: string}[]} items
 * @param {string} currentId
 * @param {string} emptyLabel
 */
export function fillSelect(select, items, currentId, emptyLabel) {
  const options = items.length
    ? items.map((d) => {
      const o = /** @type {HTMLOptionElement} */ (el('option', { text: d.label }));
      o.value = d.id;
      return o;
    })
    : [Object.assign(el('option', { text: emptyLabel }), { value: '' })];
  select.replaceChildren(...options);
  select.disabled = items.length === 0;
  if (currentId && items.some((d) => d.id === currentId)) select.value = currentId;
}

/**
 * "3 s" (at least 1 s, rounded up).
 * @param {number} ms
 */
export function formatSeconds(ms) {
  const s = Math.max(1, Math.ceil(ms / 1000));
  return `${s} s`;
}
