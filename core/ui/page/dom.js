// A tiny element builder: el('p', {class: 'x'}, 'text', child). Text is always set as text,
// never parsed as HTML, so nothing the daemon or a plugin reports can inject markup.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, '');
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Replaces a container's content.
export function show(container, ...children) {
  container.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

// "running" with data-state for the colour, in one element the tests and screen readers find.
export function stateBadge(state, attrs = {}) {
  return el('span', { class: 'state', 'data-state': state || 'unknown', ...attrs }, state || 'unknown');
}

// A table from column headings and rows of cells (strings or nodes). Each cell carries its
// heading, so a narrow window (or 200 % zoom) shows the rows as stacked cards instead.
export function table(caption, headings, rows) {
  return el('div', { class: 'table-wrap' },
    el('table', {},
      el('caption', { class: 'muted' }, caption),
      el('thead', {}, el('tr', {}, headings.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows.map((cells) => el('tr', {}, cells.map((c, i) => el('td', { 'data-label': headings[i] }, c)))))));
}

// A padlock drawn as SVG (no icon font or emoji font needed), hidden from screen readers:
// the text beside it says the same.
export function padlock() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('class', 'padlock');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const shackle = document.createElementNS(ns, 'path');
  shackle.setAttribute('d', 'M4.5 7V5a3.5 3.5 0 0 1 7 0v2');
  shackle.setAttribute('fill', 'none');
  shackle.setAttribute('stroke', 'currentColor');
  shackle.setAttribute('stroke-width', '1.6');
  const body = document.createElementNS(ns, 'rect');
  for (const [k, v] of Object.entries({ x: '2.5', y: '7', width: '11', height: '8', rx: '1.5', fill: 'currentColor' })) {
    body.setAttribute(k, v);
  }
  svg.append(shackle, body);
  return svg;
}
