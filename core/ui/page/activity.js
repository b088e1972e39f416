// Ports, the proxy, live events and diagnostics: GET /v1/ports, GET /v1/proxy, the event stream
// berthd already sends the page, GET /v1/diagnostics/checks and a link to GET /v1/diagnostics/bundle.
import { get } from './api.js';
import { el, show, stateBadge, table } from './dom.js';

const recent = [];  // the last events, newest last
const MAX_EVENTS = 200;
let eventList = null;

function eventItem(e) {
  const payload = JSON.stringify(e.payload ?? {});
  return el('li', {}, `${e.time || ''} ${e.type} (${e.source}) ${payload.length > 300 ? payload.slice(0, 300) + '…' : payload}`);
}

export function recordEvent(event) {
  recent.push(event);
  if (recent.length > MAX_EVENTS) recent.shift();
  if (eventList && eventList.isConnected) {
    if (recent.length === 1) eventList.replaceChildren();
    eventList.append(eventItem(event));
    while (eventList.children.length > MAX_EVENTS) eventList.firstChild.remove();
  }
}

async function runChecks(slot, button) {
  button.disabled = true;
  show(slot, el('p', { role: 'status' }, 'Running the checks…'));
  try {
    const result = await get('/v1/diagnostics/checks');
    show(slot, el('p', { role: 'status' }, `${result.failed} failed.`),
      table('Self-check results', ['Check', 'Category', 'Status', 'Finding', 'Fix'],
        (result.checks || []).map((c) => [c.id, c.category, stateBadge(c.status), c.finding, c.fix || ''])));
  } catch (e) {
    show(slot, el('p', { class: 'form-error' }, `The checks did not run (${e.status}): ${e.message}`));
  }
  button.disabled = false;
}

function portRow(p) {
  const host = p.host || (p.host_ip ? `${p.host_ip}:${p.host_port}` : '');
  const target = p.target || (p.container_ip ? `${p.container_ip}:${p.container_port}` : '');
  return [p.proto || '', host, p.name || p.container || '', target, p.state || '', p.reason || ''];
}

// GET /v1/proxy: the proxy and trusted CAs the engine and containers get (credentials masked).
function proxyView(proxy) {
  if (!proxy) return el('p', {}, 'No active plugin reports a proxy configuration.');
  const upstream = proxy.upstream || {};
  const env = proxy.environment || {};
  const ca = proxy.ca || {};
  const problems = [...(proxy.problems || []), ...(ca.problems || [])];
  return el('div', { id: 'proxy' },
    el('p', {}, `Mode: ${proxy.mode ?? '-'} (from ${proxy.source ?? '-'})`),
    table('Where the engine and containers send web traffic', ['Scheme', 'Upstream proxy', 'In the environment'], [
      ['http', upstream.http || 'direct', env.http || '-'],
      ['https', upstream.https || 'direct', env.https || '-'],
      ['no_proxy', '', env.no_proxy || '-']]),
    el('p', {}, `Trusted CA certificates: ${ca.count ?? 0}`),
    problems.length ? el('ul', {}, problems.map((p) => el('li', { class: 'form-error' }, typeof p === 'string' ? p : JSON.stringify(p)))) : null);
}

export async function renderActivity(container) {
  const [{ ports }, proxy] = await Promise.all([
    get('/v1/ports').catch(() => ({ ports: [] })), get('/v1/proxy').catch(() => null)]);
  eventList = el('ol', { class: 'events', id: 'event-list', 'aria-label': 'Events, newest last', tabindex: '0' },
    recent.map(eventItem));
  if (!recent.length) eventList.append(el('li', { class: 'muted' }, 'No events yet.'));
  const checks = el('div', { id: 'checks' });
  const button = el('button', { type: 'button', onclick: () => runChecks(checks, button) }, 'Run the self-check');
  show(container,
    el('h3', {}, 'Published ports'),
    ports && ports.length
      ? table('Container ports forwarded to this host', ['Proto', 'Host', 'Container', 'Target', 'State', 'Reason'], ports.map(portRow))
      : el('p', {}, 'No ports are forwarded.'),
    el('h3', {}, 'Proxy and trusted CAs'),
    proxyView(proxy),
    el('h3', {}, 'Events'),
    el('p', { class: 'muted' }, 'What berthd kept of its recent events, then new ones as they happen (newest last).'),
    eventList,
    el('h3', {}, 'Diagnostics'),
    el('p', {}, button, ' ',
      el('a', { class: 'button', href: '/v1/diagnostics/bundle', download: 'berth-diagnostics.tar.gz' },
        'Download a diagnostics bundle')),
    checks);
}
