// Every call the page makes goes through the public REST API, authorised by the session
// cookie. A change carries the X-Berth-CSRF header berthd demands of cookie-authorised changes.
const listeners = new Set();

// Told when berthd answers 401: the session expired (berthctl ui gives a new link).
export function onSignedOut(listener) { listeners.add(listener); }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-Berth-CSRF'] = '1';
  if (body !== undefined) headers['Content-Type'] = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, credentials: 'same-origin', cache: 'no-store',
                                   body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'berthd does not answer (' + e.message + ')');
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    if (response.status === 401) listeners.forEach((l) => l());
    const message = data && data.error && data.error.message ? data.error.message : response.status + ' ' + response.statusText;
    throw new ApiError(response.status, message);
  }
  return data;
}

export const get = (path) => call('GET', path);

// Follows GET /v1/events (newline-delimited JSON) from the oldest event berthd retained,
// calling onEvent for each event and reconnecting after a pause (from the last one seen) when
// the stream ends. onState(true|false) says whether it is live.
export function followEvents(onEvent, onState) {
  let since = 0;
  const run = async () => {
    for (;;) {
      try {
        const response = await fetch('/v1/events?since=' + since,
                                     { credentials: 'same-origin', cache: 'no-store' });
        if (response.status === 401) { listeners.forEach((l) => l()); onState(false); return; }
        if (!response.ok || !response.body) throw new Error(String(response.status));
        onState(true);
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffered = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffered += decoder.decode(value, { stream: true });
          let nl;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (!line) continue;
            try {
              const event = JSON.parse(line);
              if (typeof event.seq === 'number') since = event.seq;
              onEvent(event);
            } catch { /* a line that is not an event: skip it */ }
          }
        }
      } catch { /* berthd restarting or gone: try again */ }
      onState(false);
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  run();
}
