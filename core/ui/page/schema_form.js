// One plugin's settings as a form generated from its JSON Schema: a control per property,
// chosen by type (boolean, enum, integer/number, string, secret string, anything else as JSON),
// with its label, description, default and where the current value comes from. A value the
// administrator locked is shown read-only with the notice "locked by your administrator".
import { el, padlock } from './dom.js';

const SOURCE_TEXT = { user: 'your value', admin: "your administrator's default", default: 'default', locked: 'locked' };

function controlFor(key, prop, value, id, locked, describedBy) {
  const common = { id, name: key, disabled: locked, 'aria-describedby': describedBy || undefined };
  if (prop.type === 'boolean') {
    return el('input', { ...common, type: 'checkbox', checked: value === true });
  }
  if (Array.isArray(prop.enum)) {
    return el('select', common, prop.enum.map((option) =>
      el('option', { value: JSON.stringify(option), selected: option === value }, String(option))));
  }
  if (prop.type === 'integer' || prop.type === 'number') {
    return el('input', { ...common, type: 'number', inputmode: 'numeric', step: prop.type === 'integer' ? '1' : 'any',
                         min: prop.minimum, max: prop.maximum, value: value ?? '' });
  }
  if (prop.type === 'string' && prop.secret) {
    // The API masks secrets; an empty box means "keep what is set".
    return el('input', { ...common, type: 'password', autocomplete: 'off', value: '',
                         placeholder: value ? 'set (hidden); type to replace' : 'not set' });
  }
  if (prop.type === 'string') return el('input', { ...common, type: 'text', value: value ?? '' });
  if (isStringList(prop)) {
    return el('textarea', { ...common, rows: '3', spellcheck: 'false' }, (value || []).join('\n'));
  }
  return el('textarea', { ...common, rows: '3', spellcheck: 'false' }, JSON.stringify(value ?? null, null, 2));
}

// An array of strings is edited one per line.
function isStringList(prop) {
  return prop.type === 'array' && prop.items && prop.items.type === 'string';
}

// The control's value as JSON, or undefined when it says "unchanged" (an empty secret).
function readControl(control, prop) {
  if (prop.type === 'boolean') return control.checked;
  if (Array.isArray(prop.enum)) return JSON.parse(control.value);
  if (prop.type === 'integer' || prop.type === 'number') {
    if (control.value.trim() === '') return null;
    const n = Number(control.value);
    return Number.isNaN(n) ? control.value : n;  // berthd answers 400 naming the key
  }
  if (prop.type === 'string' && prop.secret) return control.value === '' ? undefined : control.value;
  if (prop.type === 'string') return control.value;
  if (isStringList(prop)) return control.value.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  try { return JSON.parse(control.value); } catch { return control.value; }
}

// settings: GET /v1/settings/{id}. Returns {form, fields}: fields[key] = {control, error, read()}.
export function buildSettingsForm(settings, onSubmit, onReset) {
  const schema = settings.schema || {};
  const props = schema.properties || {};
  const locked = new Set(settings.locked || []);
  const base = 'setting-' + settings.plugin.replace(/[^A-Za-z0-9_-]/g, '_');
  const fields = {};
  const rows = Object.entries(props).map(([key, prop]) => {
    const id = `${base}-${key}`;
    const isLocked = locked.has(key);
    const value = settings.values ? settings.values[key] : undefined;
    const source = settings.sources ? settings.sources[key] : undefined;
    const descId = `${id}-desc`, noteId = `${id}-note`, errorId = `${id}-error`;
    const described = [descId, isLocked ? noteId : null, errorId].filter(Boolean).join(' ');
    const control = controlFor(key, prop, value, id, isLocked, described);
    const error = el('p', { class: 'field-error', id: errorId, 'aria-live': 'polite' });
    const defaultText = prop.default !== undefined ? ` Default: ${JSON.stringify(prop.default)}.` : '';
    const sourceText = source && !isLocked ? ` Now: ${SOURCE_TEXT[source] || source}.` : '';
    fields[key] = { control, error, prop, read: () => readControl(control, prop) };
    const reset = source === 'user' && !isLocked
      ? el('button', { type: 'button', class: 'secondary', 'aria-label': `Reset ${key} to the default`,
                       onclick: () => onReset(key) }, 'Reset to default')
      : null;
    const label = el('label', { for: id }, key);
    const sentence = prop.description ? prop.description.replace(/([^.!?])$/, '$1.') : '';
    const hint = isStringList(prop) ? ' One per line.' : '';
    const desc = el('span', { class: 'desc', id: descId }, sentence + hint + defaultText + sourceText);
    const note = isLocked
      ? el('p', { class: 'locked-note', id: noteId }, padlock(), ' locked by your administrator')
      : null;
    return prop.type === 'boolean'
      ? el('div', { class: 'field', 'data-key': key }, control, ' ', label, desc, note, reset, error)
      : el('div', { class: 'field', 'data-key': key }, label, desc, control, note, reset, error);
  });
  const status = el('p', { class: 'form-status', role: 'status', id: `${base}-status` });
  const formError = el('p', { class: 'form-error', id: `${base}-error`, 'aria-live': 'polite' });
  const anyEditable = Object.keys(props).some((k) => !locked.has(k));
  const form = el('form', { id: base, 'data-plugin': settings.plugin, novalidate: true },
    el('fieldset', {}, el('legend', {}, settings.plugin), rows,
      anyEditable ? el('button', { type: 'submit' }, `Save ${settings.plugin}`) : null, status, formError));
  form.addEventListener('submit', (e) => { e.preventDefault(); onSubmit(); });
  return { form, fields, status, formError };
}
