/**
 * Element building without innerHTML, so text from the API is never parsed as markup.
 *
 * @example
 *   h('p', { class: 'error' }, 'Upload failed: ', message)
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** A progress bar: `update(fraction, label)` with fraction in [0, 1]. */
export function progressBar(label) {
  const fill = h('div', { class: 'progress-fill' });
  const text = h('span', { class: 'progress-text' }, label);
  const bar = h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 }, fill, text);
  return {
    element: bar,
    update(fraction, caption = label) {
      const percent = Math.max(0, Math.min(100, fraction * 100));
      fill.style.width = `${percent}%`;
      bar.setAttribute('aria-valuenow', percent.toFixed(0));
      text.textContent = caption;
    },
  };
}

/** "1.2 MB" */
export function formatBytes(bytes) {
  const units = ['B', 'kB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
