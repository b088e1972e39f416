// Settings: a form per plugin from its schema. Saving sends the changed keys as a JSON merge
// patch to PATCH /v1/settings/{id}, the call `berthctl settings set` makes; a refusal (400, 403)
// is shown next to the field it names.
import { call, get } from './api.js';
import { el, show } from './dom.js';
import { buildSettingsForm } from './schema_form.js';

function sameValue(a, b) { return JSON.stringify(a) === JSON.stringify(b); }

// The forms on the page by plugin id: {slot, dirty()}, so a change made elsewhere (berthctl,
// another browser, the admin's SIGHUP) shows up without throwing away what is being typed.
const mounted = new Map();

// The keys whose control holds something other than the value the form was drawn with.
function changedValues(ui, settings) {
  const patch = {};
  for (const [key, field] of Object.entries(ui.fields)) {
    if (field.control.disabled) continue;
    const value = field.read();
    if (value === undefined) continue;
    if (!sameValue(value, settings.values ? settings.values[key] : undefined)) patch[key] = value;
  }
  return patch;
}

// The field a refusal is about: berthd's messages name the key ('greeting' ...).
function fieldOfMessage(fields, keys, message) {
  return keys.find((k) => message.includes(`'${k}'`) || message.includes(`"${k}"`)) ||
         keys.find((k) => message.includes(k)) || null;
}

function mountPlugin(slot, settings) {
  const send = async (patch, ui) => {
    for (const f of Object.values(ui.fields)) f.error.textContent = '';
    ui.formError.textContent = '';
    ui.status.textContent = 'Saving…';
    try {
      const saved = await call('PATCH', `/v1/settings/${encodeURIComponent(settings.plugin)}`, patch);
      mountPlugin(slot, saved);
      slot.querySelector('.form-status').textContent = `Saved ${Object.keys(patch).join(', ')}.`;
    } catch (e) {
      ui.status.textContent = '';
      const key = fieldOfMessage(ui.fields, Object.keys(patch), e.message);
      const text = `Not saved (${e.status}): ${e.message}`;
      if (key) {
        ui.fields[key].error.textContent = text;
        ui.fields[key].control.setAttribute('aria-invalid', 'true');
        ui.fields[key].control.focus();
      } else {
        ui.formError.textContent = text;
      }
    }
  };
  const ui = buildSettingsForm(settings,
    () => {
      const patch = changedValues(ui, settings);
      if (!Object.keys(patch).length) { ui.status.textContent = 'Nothing changed.'; return; }
      send(patch, ui);
    },
    (key) => send({ [key]: null }, ui));
  show(slot, ui.form);
  mounted.set(settings.plugin, {
    slot,
    settings,
    busy: () => Object.keys(changedValues(ui, settings)).length > 0 || slot.contains(document.activeElement),
  });
}

// settings.changed (one plugin) and config.reloaded (the admin's locks may have moved): redraw
// the affected forms that nobody is editing right now.
export async function settingsEvent(event) {
  const ids = event.type === 'settings.changed' ? [event.payload && event.payload.plugin]
    : event.type === 'config.reloaded' ? [...mounted.keys()] : [];
  for (const id of ids) {
    const form = mounted.get(id);
    if (!form || !form.slot.isConnected || form.busy()) continue;
    try {
      const fresh = await get(`/v1/settings/${encodeURIComponent(id)}`);
      // The page's own save is already drawn (with its "Saved" note): redraw only what differs.
      const shown = form.settings;
      if (sameValue([fresh.values, fresh.sources, fresh.locked], [shown.values, shown.sources, shown.locked])) continue;
      if (form.busy()) continue;
      // The redraw keeps what the form last said ("Saved greeting."): the event of the page's
      // own save may come after its answer, and its note must not vanish with the old form.
      const note = form.slot.querySelector('.form-status')?.textContent || '';
      mountPlugin(form.slot, fresh);
      const status = form.slot.querySelector('.form-status');
      if (status && note) status.textContent = note;
    } catch { /* gone meanwhile: the next visit draws it */ }
  }
}

export async function renderSettings(container) {
  mounted.clear();
  const { plugins } = await get('/v1/plugins');
  const known = plugins.filter((p) => p.state !== 'refused');
  const all = await Promise.all(known.map((p) =>
    get(`/v1/settings/${encodeURIComponent(p.id)}`).catch(() => null)));
  const withSettings = all.filter((s) => s && s.schema && Object.keys(s.schema.properties || {}).length);
  if (!withSettings.length) { show(container, el('p', {}, 'No plugin has settings.')); return; }
  const anchor = (id) => 'plugin-' + id.replace(/[^A-Za-z0-9_-]/g, '_');
  show(container,
    el('nav', { 'aria-label': 'Plugins with settings' },
      el('ul', { class: 'toc' }, withSettings.map((s) => el('li', {}, el('a', { href: '#' + anchor(s.plugin),
        // Not a #fragment change: that would switch views.
        onclick: (e) => { e.preventDefault(); document.getElementById(anchor(s.plugin)).focus(); } },
        s.plugin))))),
    withSettings.map((s) => {
      const slot = el('div', { class: 'plugin-settings', id: anchor(s.plugin), tabindex: '-1' });
      mountPlugin(slot, s);
      return slot;
    }));
}
