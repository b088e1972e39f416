// Overview: the engine's state (with progress while it starts, swaps or sleeps), the backend and
// why it was chosen, the version pack, every plugin with its state and reason, and problems.
import { get } from './api.js';
import { el, show, stateBadge, table } from './dom.js';

function engineCard(engine, backend) {
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
    engine.socket ? el('p', {}, 'Docker socket: ', el('code', {}, engine.socket)) : null);
}

function backendCard(engine, backend) {
  return el('div', { class: 'card' },
    el('h3', {}, 'Backend and pack'),
    el('p', {}, 'Backend: ', el('strong', { id: 'engine-backend' }, engine.backend || backend.active || backend.chosen || 'none')),
    backend.why ? el('p', { id: 'backend-why' }, 'Why: ', backend.why) : null,
    backend.note ? el('p', { class: 'muted' }, backend.note) : null,
    el('p', {}, 'Version pack: ', el('strong', { id: 'engine-pack' }, engine.pack || 'none yet')));
}

function plugins(list) {
  return [el('h3', {}, 'Plugins'),
    table('Every plugin berthd found, with its state and the reason for it',
      ['Plugin', 'Kind', 'Version', 'State', 'Reason'],
      list.map((p) => [p.id, p.kind, p.version, stateBadge(p.state), p.reason || '']))];
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
    el('div', { class: 'cards' }, engineCard(engine, backend), backendCard(engine, backend),
      el('div', { class: 'card' }, el('h3', {}, 'Daemon'),
        el('p', {}, `berthd ${status.version}, pid ${status.pid}`),
        el('p', {}, `Plugins: ${status.plugins.active} active, ${status.plugins.failed} failed, ` +
                    `${status.plugins.refused} refused, ${status.plugins.disabled} disabled`))),
    plugins(pluginList.plugins || []),
    problems(status.problems || []));
}
