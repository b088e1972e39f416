// The page's shell: one view at a time from the URL's #fragment, each drawn from the REST API.
// The overview and backend views follow the event stream (and a slow poll as a fallback);
// the settings view is drawn once per visit so a refresh never throws away what is being typed.
import { followEvents, onSignedOut } from './api.js';
import { renderActivity, recordEvent } from './activity.js';
import { renderBackend, swapEvent } from './backend.js';
import { el, show } from './dom.js';
import { renderOverview } from './overview.js';
import { renderSettings, settingsEvent } from './settings.js';

const views = {
  overview: { render: renderOverview, live: true },
  settings: { render: renderSettings, live: false },
  backend: { render: renderBackend, live: true },
  activity: { render: renderActivity, live: false },
};
let current = null;
let pending = null;

function viewName() {
  const name = location.hash.replace(/^#/, '');
  return views[name] ? name : 'overview';
}

// One render of a view at a time: renders fetch and then draw, so two that overlap could
// finish out of order and leave the older answer on screen (a restart's "starting" after
// its "running"). A draw asked for meanwhile runs once more when the current one ends.
const drawing = {};
async function draw(name) {
  const d = drawing[name] || (drawing[name] = { busy: false, again: false });
  if (d.busy) { d.again = true; return; }
  d.busy = true;
  try {
    do { d.again = false; await drawOnce(name); } while (d.again);
  } finally {
    d.busy = false;
  }
}

async function drawOnce(name) {
  const body = document.getElementById(`${name}-body`);
  // A redraw replaces the view's elements: the one that had the focus gets it back (by its id),
  // so a keyboard user is not thrown to the top of the page every few seconds.
  const focused = body.contains(document.activeElement) ? document.activeElement.id : '';
  try {
    await views[name].render(body);
    if (focused && !body.contains(document.activeElement)) document.getElementById(focused)?.focus();
    body.dataset.loaded = 'true';
  } catch (e) {
    if (e.status !== 401) show(body, el('p', { class: 'form-error', role: 'alert' }, `Could not load: ${e.message}`));
  }
}

function select(focus) {
  const name = viewName();
  current = name;
  for (const key of Object.keys(views)) document.getElementById(`view-${key}`).hidden = key !== name;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `berth: ${document.getElementById(`${name}-title`).textContent}`;
  draw(name);
  if (focus) document.getElementById(`${name}-title`).closest('section').focus?.();
}

// Many events arrive in bursts (a start sends dozens): redraw at most every 300 ms.
function refreshSoon() {
  if (pending || !views[current].live) return;
  // The view may have changed meanwhile: a view that is not live (Settings) is never redrawn
  // under the user's hands.
  pending = setTimeout(() => { pending = null; if (views[current].live) draw(current); }, 300);
}

onSignedOut(() => {
  const banner = document.getElementById('banner');
  show(banner, 'Your session has ended. Run ', el('code', {}, 'berthctl ui'), ' and open the new link.');
  banner.hidden = false;
});

for (const section of document.querySelectorAll('main section')) section.tabIndex = -1;
window.addEventListener('hashchange', () => select(true));
select(false);
// The stream starts with what berthd retained; a swap's outcome is news only if it happens now.
const openedAt = Date.now();
const isNews = (event) => !event.time || Date.parse(event.time) >= openedAt - 2000;
followEvents((event) => {
  recordEvent(event);
  if (isNews(event)) { swapEvent(event); settingsEvent(event); }
  refreshSoon();
},
  (live) => { document.getElementById('connection').textContent = live ? 'Live' : 'Reconnecting…'; });
setInterval(() => { if (views[current].live) draw(current); }, 5000);
