// Overview: the engine's state (with progress while it starts, swaps or sleeps), the backend and
// why it was chosen, the version pack, every plugin with its state and reason, and problems.
import { call, get } from './api.js';
import { el, show, stateBadge, table } from './dom.js';

// What the last action said (engine start/stop, plugin enable/disable), kept across redraws.
let engineMessage = '';
let pluginMessage = '';

// Runs a POST of the public API for a button; `say` gets the outcome, then the view redraws.
async function act(container, path, describe, say) {
  say(`${describe}…`);
  try {
    await call('POST', path);
    say(`${describe}: done.`);
  } catch (e) {
    say(`${describe} refused (${e.status}): ${e.message}`);
  }
  await renderOverview(container);
}

function engineButtons(container, engine) {
  const say = (text) => { engineMessage = text; const m = document.getElementById('engine-message'); if (m) m.textContent = text; };
  const button = (verb, path) => el('button', { type: 'button', class: 'secondary', id: `engine-${verb.toLowerCase()}`,
    onclick: () => act(container, path, `${verb} the engine`, say) }, `${verb} the engine`);
  const running = engine.state === 'running';
  const settled = ['stopped', 'failed'].includes(engine.state);
  return el('div', {},
    el('p', { class: 'actions' },
      settled ? button('Start', '/v1/engine/start') : null,
      running ? button('Restart', '/v1/engine/restart') : null, ' ',
      running ? button('Stop', '/v1/engine/stop') : null),
    el('p', { id: 'engine-message', role: 'status' }, engineMessage));
}

function engineCard(container, engine) {
  const progress = engine.progress && typeof engine.progress.fraction === 'number' ? engine.progress : null;
  const busy = ['starting', 'stopping'].includes(engine.state) || engine.swap;
  return el('div', { class: 'card' },
    el('h3', {}, 'Engine'),
    el('p', {}, 'State: ', stateBadge(engine.state, { id: 'engine-state' })),
    engine.reason ? el('p', { id: 'engine-reason' }, engine.reason) : null,
    engine.swap ? el('p', { id: 'engine-swap' }, `Swapping backend: ${engine.swap.from} → ${engine.swap.to}`) : null,
    busy && progress ? el('div', {},
      el('label', { for: 'engine-progress' }, progress.message || 'Progress'),
      el('progress', { id: 'engine-progress', max: '1', value: String(progress.fraction) })) : null,
    busy && !progress ? el('progress', { id: 'engine-progress', 'aria-label': 'Engine progress' }) : null,
    engine.socket ? el('p', {}, 'Docker socket: ', el('code', {}, engine.socket)) : null,
    engineButtons(container, engine));
}

function backendCard(engine, backend) {
  return el('div', { class: 'card' },
    el('h3', {}, 'Backend and pack'),
    el('p', {}, 'Backend: ', el('strong', { id: 'engine-backend' }, engine.backend || backend.active || backend.chosen || 'none')),
    backend.why ? el('p', { id: 'backend-why' }, 'Why: ', backend.why) : null,
    backend.note ? el('p', { class: 'muted' }, backend.note) : null,
    el('p', {}, 'Version pack: ', el('strong', { id: 'engine-pack' }, engine.pack || 'none yet')));
}

// Kubernetes (when the k8s feature is loaded): its phase, and enable / disable / reset through
// the feature's settings, the same PATCH /v1/settings/berth.feature.k8s that berthctl k8s makes.
let kubernetesMessage = '';
const kK8s = 'berth.feature.k8s';

async function changeKubernetes(container, describe, patchFor, say) {
  say(`${describe}…`);
  try {
    const current = await get(`/v1/settings/${kK8s}`);
    await call('PATCH', `/v1/settings/${kK8s}`, patchFor(current.values || {}));
    say(`${describe}: asked.`);
  } catch (e) {
    say(`${describe} refused (${e.status}): ${e.message}`);
  }
  await renderOverview(container);
}

function kubernetesCard(container, k8s) {
  if (!k8s) return null;
  const say = (text) => { kubernetesMessage = text; const m = document.getElementById('kubernetes-message'); if (m) m.textContent = text; };
  const button = (id, label, patchFor) => el('button', { type: 'button', class: 'secondary', id,
    onclick: () => changeKubernetes(container, label, patchFor, say) }, label);
  const off = k8s.phase === 'disabled';
  return el('div', { class: 'card' },
    el('h3', {}, 'Kubernetes'),
    el('p', {}, 'Phase: ', stateBadge(k8s.phase, { id: 'kubernetes-phase' })),
    k8s.detail ? el('p', { id: 'kubernetes-detail' }, k8s.detail) : null,
    el('p', { class: 'actions' },
      off ? button('kubernetes-enable', 'Enable Kubernetes', () => ({ enabled: true }))
        : button('kubernetes-disable', 'Disable Kubernetes', () => ({ enabled: false })), ' ',
      off ? null : button('kubernetes-reset', 'Reset the cluster',
        (values) => ({ reset_request: (values.reset_request || 0) + 1 }))),
    el('p', { id: 'kubernetes-message', role: 'status' }, kubernetesMessage));
}

// Every plugin with its state and reason, and a button to enable or disable it (persisted;
// the administrator's choice wins, and the refusal says so).
function plugins(container, list) {
  const say = (text) => { pluginMessage = text; const m = document.getElementById('plugin-message'); if (m) m.textContent = text; };
  const action = (p) => {
    if (p.state === 'refused') return '';
    const enable = p.state === 'disabled';
    const verb = enable ? 'Enable' : 'Disable';
    return el('button', { type: 'button', class: 'secondary', id: `plugin-${verb.toLowerCase()}-${p.id}`,
      onclick: () => act(container, `/v1/plugins/${encodeURIComponent(p.id)}/${verb.toLowerCase()}`, `${verb} ${p.id}`, say) },
      `${verb} ${p.id}`);
  };
  return [el('h3', {}, 'Plugins'),
    el('p', { id: 'plugin-message', role: 'status' }, pluginMessage),
    table('Every plugin berthd found, with its state and the reason for it',
      ['Plugin', 'Kind', 'Version', 'State', 'Reason', 'Action'],
      list.map((p) => [p.id, p.kind, p.version, stateBadge(p.state), p.reason || '', action(p)]))];
}

function problems(list) {
  if (!list.length) return [el('h3', {}, 'Problems'), el('p', { id: 'no-problems' }, 'No problems reported.')];
  return [el('h3', {}, 'Problems'),
    el('ul', { id: 'problems' }, list.map((p) => el('li', {}, el('strong', {}, p.plugin), ': ', p.message)))];
}

export async function renderOverview(container) {
  const [status, pluginList, backend] = await Promise.all([
    get('/v1/status'), get('/v1/plugins'), get('/v1/backend').catch(() => ({}))]);
  const engine = status.engine || {};
  show(container,
    el('div', { class: 'cards' }, engineCard(container, engine), backendCard(engine, backend),
      el('div', { class: 'card' }, el('h3', {}, 'Daemon'),
        el('p', {}, `berthd ${status.version}, pid ${status.pid}`),
        el('p', {}, `Plugins: ${status.plugins.active} active, ${status.plugins.failed} failed, ` +
                    `${status.plugins.refused} refused, ${status.plugins.disabled} disabled`)),
      kubernetesCard(container, status.kubernetes)),
    plugins(container, pluginList.plugins || []),
    problems(status.problems || []));
}
