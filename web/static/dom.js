// dom.js: tiny DOM helpers. Data reaches the page only through
// textContent and attributes, never through innerHTML.

/** $ returns the element with this id; a missing one is a bug. */
export function $(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`console: no element #${id}`);
  return node;
}

/**
 * el creates an element. props: className, text, title, dataset (object),
 * attrs (object), on (object of event listeners). Children are nodes or
 * strings (added as text).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.text !== undefined) node.textContent = props.text;
  if (props.title) node.title = props.title;
  for (const [k, v] of Object.entries(props.dataset || {})) node.dataset[k] = v;
  for (const [k, v] of Object.entries(props.attrs || {})) node.setAttribute(k, v);
  for (const [k, v] of Object.entries(props.on || {})) node.addEventListener(k, v);
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return node;
}

/** show sets whether node is displayed. */
export function show(node, visible = true) {
  node.hidden = !visible;
}

/** setText sets the text of the element with this id. */
export function setText(id, text) {
  $(id).textContent = text;
}

/**
 * pathNodes returns a slash-separated key as text nodes with a line-break
 * opportunity (<wbr>) after each slash, so long keys wrap at segments.
 */
export function pathNodes(path) {
  const nodes = [];
  const parts = path.split('/');
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    nodes.push(document.createTextNode(last ? part : `${part}/`));
    if (!last) nodes.push(document.createElement('wbr'));
  });
  return nodes;
}
