// Backend: each backend's probe of this host, a button to swap the engine onto another one
// (PUT /v1/backend, as berthctl backend use) with its progress, and the version packs (POST
// /v1/packs/use, as berthctl pack use).
import { call, get } from './api.js';
import { el, show, stateBadge, table } from './dom.js';

let message = '';  // what the last action said, kept across re-renders
let swapProgress = null;  // the last engine.swap.progress payload of the swap under way

// The swap's story from the event stream (docs/rest-api.md, "Backend swap"): its progress, and
// how it ended, said in the view's status line.
export function swapEvent(event) {
  const p = event.payload || {};
  switch (event.type) {
    case 'engine.swap.started': swapProgress = null; message = ''; break;  // the progress says it
    case 'engine.swap.progress': swapProgress = p; break;
    case 'engine.swap.done':
      swapProgress = null;
      message = `Swap done: the engine runs on ${p.backend}${p.seconds ? ` (${Number(p.seconds).toFixed(1)} s)` : ''}.`;
      break;
    case 'engine.swap.rolled_back':
      swapProgress = null;
      message = `Swap to ${p.to} did not work and was rolled back: the engine runs on ${p.backend} again.${p.reason ? ` Why: ${p.reason}` : ''}`;
      break;
    case 'engine.swap.failed':
      swapProgress = null;
      message = `Swap to ${p.to} failed: ${p.reason || ''}`;
      break;
    default: break;
  }
}

function progressOf(engine) {
  const busy = ['starting', 'stopping'].includes(engine.state) || engine.swap;
  if (!busy) return null;
  const p = engine.swap && swapProgress ? swapProgress : engine.progress;
  return el('div', { id: 'backend-progress', role: 'status' },
    engine.swap ? el('p', {}, `Swapping ${engine.swap.from} → ${engine.swap.to}…`) : el('p', {}, `Engine ${engine.state}…`),
    p && typeof p.fraction === 'number'
      ? el('progress', { max: '1', value: String(p.fraction), 'aria-label': p.message || 'Progress' })
      : el('progress', { 'aria-label': 'Progress' }),
    p && p.message ? el('p', { class: 'muted' }, p.message) : null);
}

async function act(container, method, path, body, describe) {
  message = describe + '…';
  try {
    const answer = await call(method, path, body);
    if (!(answer && answer.swap)) message = `${describe}: done.`;  // a swap's story comes from its events
  } catch (e) {
    message = `${describe} refused (${e.status}): ${e.message}`;
  }
  await renderBackend(container);
}

export async function renderBackend(container) {
  const [backend, status, packs] = await Promise.all([get('/v1/backend'), get('/v1/status'), get('/v1/packs').catch(() => ({ packs: [] }))]);
  const engine = status.engine || {};
  const busy = Boolean(engine.swap) || ['starting', 'stopping'].includes(engine.state);
  const rows = (backend.backends || []).map((b) => {
    const current = b.active || (!backend.active && b.chosen);
    const button = b.supported && !current
      ? el('button', { type: 'button', disabled: backend.locked || busy, id: `backend-use-${b.name}`,
                       onclick: () => act(container, 'PUT', '/v1/backend', { name: b.name }, `Use ${b.name}`) },
           `Use ${b.name}`)
      : null;
    return [el('strong', {}, b.name), b.supported ? 'yes' : 'no', b.reason || '', String(b.priority ?? ''),
            b.accelerator || '', current ? (b.active ? 'active' : 'chosen') : '', button || ''];
  });
  // The pack the engine runs on now, and the one chosen for the next start (berthctl pack use).
  const packRows = (packs.packs || []).map((p) => {
    const inUse = engine.pack === p.version;
    const state = [inUse ? 'in use' : '', p.current ? 'chosen' : ''].filter(Boolean).join(', ');
    const button = inUse || p.current ? ''
      : el('button', { type: 'button', class: 'secondary', disabled: busy, id: `pack-use-${p.version}`,
                       onclick: () => act(container, 'POST', '/v1/packs/use', { version: p.version }, `Use pack ${p.version}`) },
           `Use pack ${p.version}`);
    return [p.version, state, button];
  });
  show(container,
    el('p', {}, 'Engine: ', stateBadge(engine.state, { id: 'backend-engine-state' }),
      engine.backend ? ` on ${engine.backend}` : ''),
    progressOf(engine),
    backend.why ? el('p', {}, 'Chosen: ', el('strong', {}, backend.chosen || 'none'), ' — ', backend.why) : null,
    backend.locked ? el('p', { class: 'locked-note' }, 'The backend choice is locked by your administrator.') : null,
    el('p', { id: 'backend-message', role: 'status' }, message),
    table('Backends and what their probe of this host says',
      ['Backend', 'Supported', 'Reason', 'Priority', 'Runs on', 'Now', 'Action'], rows),
    el('h3', {}, 'Version packs'),
    packRows.length ? table('Installed engine version packs', ['Version', 'State', 'Action'], packRows)
                    : el('p', {}, 'No pack is installed yet; the first engine start builds one.'));
}
