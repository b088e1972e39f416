// The browser half of berth's web page tests: Debian's chromium, headless, driven by
// playwright-core. `node browser.mjs SCENARIO '{"url": ..., "out": ...}'` signs in with the
// one-time URL berthctl ui printed, does what a person would do, saves screenshots under
// `out`, and prints one JSON line of what it saw; the C++ test (ui_e2e_test.cpp) checks it
// and checks berthd's side over REST. Every wait has a deadline, and the whole run has one.
import { createServer } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const WAIT_MS = 30000;
const [scenario, argText] = process.argv.slice(2);
const args = JSON.parse(argText || '{}');
const deadline = setTimeout(() => {
  console.error(`browser.mjs: ${scenario} did not finish within 110 s`);
  process.exit(124);
}, 110000);

// A fresh profile every run (playwright makes a temporary --user-data-dir), and nothing that
// reaches for the network on its own: this machine's network is closed.
const browser = await chromium.launch({
  executablePath: process.env.BERTH_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  timeout: WAIT_MS,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});

// What the page said on its console and what failed in it, for the failure message.
const pageLog = [];

async function signedInPage() {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  page.on('console', (m) => pageLog.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageLog.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => pageLog.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  const response = await page.goto(args.url);
  return { context, page, status: response ? response.status() : 0 };
}

async function screenshot(page, name) {
  mkdirSync(args.out, { recursive: true });
  await page.screenshot({ path: join(args.out, name), fullPage: true });
}

async function openSettings(page) {
  await page.getByRole('link', { name: 'Settings' }).click();
  const form = page.locator('form[data-plugin="hello.feature"]');
  await form.waitFor();
  return form;
}

const scenarios = {
  // The overview reaches "running"; the cookie is HttpOnly and SameSite=Strict; the same link
  // in a second browser context does not sign in again.
  async overview() {
    const { context, page, status } = await signedInPage();
    await page.locator('#engine-state', { hasText: 'running' }).waitFor();
    const landed = page.url();
    await screenshot(page, 'overview.png');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'berth_session') || null;
    const seenByScript = await page.evaluate(() => document.cookie);
    await page.getByRole('link', { name: 'Backend' }).click();
    await page.locator('#backend-engine-state').waitFor();
    await screenshot(page, 'backend.png');
    await page.getByRole('link', { name: 'Ports, events and diagnostics' }).click();
    await page.getByRole('button', { name: 'Run the self-check' }).click();
    await page.locator('#checks [role="status"]', { hasText: 'failed' }).waitFor();
    await screenshot(page, 'activity.png');
    const result = {
      status, url: landed, engine: await page.locator('#overview-body #engine-state').textContent().catch(() => null),
      backend: null, cookie: session && { httpOnly: session.httpOnly, sameSite: session.sameSite, path: session.path },
      scriptSeesCookie: seenByScript.includes('berth_session'),
    };
    await page.getByRole('link', { name: 'Overview' }).click();
    result.engine = await page.locator('#engine-state').textContent();
    result.backend = await page.locator('#engine-backend').textContent();
    await page.getByRole('button', { name: 'Restart the engine' }).click();
    result.restart = await page.locator('#engine-message', { hasText: 'done' }).textContent();
    // The restart goes on after its request returned ("starting"): wait until berthd says
    // running, then until the page shows it (the page may still show the state before).
    await page.waitForFunction(async () =>
      (await (await fetch('/v1/status', { credentials: 'same-origin' })).json()).engine.state === 'running',
    null, { timeout: 90000, polling: 250 });
    await page.waitForFunction(() => document.getElementById('engine-state')?.textContent === 'running',
      null, { timeout: 15000 });
    result.engineAfterRestart = await page.locator('#engine-state').textContent();
    const again = await browser.newContext();
    const replay = await (await again.newPage()).goto(args.url);
    result.replay = { status: replay.status(), text: await replay.text() };
    result.replayCookies = (await again.cookies()).length;
    return result;
  },

  // Types a new greeting and saves it with the keyboard (Enter); then a value out of range
  // (times = 99) must come back as a refusal next to its field.
  async 'set-greeting'() {
    const { page } = await signedInPage();
    const form = await openSettings(page);
    const greeting = form.getByLabel('greeting', { exact: true });
    await greeting.fill(args.value);
    await greeting.press('Enter');
    const status = form.locator('.form-status', { hasText: 'Saved' });
    try {
      await status.waitFor();
    } catch (e) {
      // What the page showed instead, for whoever reads the failure.
      await screenshot(page, 'set-greeting-failed.png');
      const shown = await form.innerText().catch(() => '(no form)');
      throw new Error(`${e.message}\nthe form said:\n${shown}`);
    }
    const saved = await status.textContent();
    const times = form.getByLabel('times', { exact: true });
    await times.fill('99');
    await form.getByRole('button', { name: 'Save hello.feature' }).click();
    const error = form.locator('#setting-hello_feature-times-error');
    await error.filter({ hasText: 'Not saved' }).waitFor();
    await screenshot(page, 'settings.png');
    return { saved, greeting: await form.getByLabel('greeting', { exact: true }).inputValue(),
             timesError: await error.textContent(), timesFocused: await times.evaluate((e) => e === document.activeElement) };
  },

  // The admin locked the greeting: its input is disabled and says who locked it.
  async locked() {
    const { page } = await signedInPage();
    const form = await openSettings(page);
    const greeting = form.getByLabel('greeting', { exact: true });
    await greeting.waitFor();
    const note = form.locator('#setting-hello_feature-greeting-note');
    await screenshot(page, 'settings-locked.png');
    await form.screenshot({ path: join(args.out, 'hello-locked.png') });
    // The admin also decided the plugin stays enabled: the page's Disable is refused, and says why.
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('button', { name: 'Disable hello.feature' }).click();
    const refusal = await page.locator('#plugin-message', { hasText: 'refused' }).textContent();
    await page.getByRole('link', { name: 'Settings' }).click();
    return { refusal, disabled: await greeting.isDisabled(), value: await greeting.inputValue(), note: await note.textContent(),
             describedBy: await greeting.getAttribute('aria-describedby'),
             timesDisabled: await form.getByLabel('times', { exact: true }).isDisabled() };
  },

  // The Backend view's button moves the running engine to args.backend: the progress shows
  // while it runs, and the view says how it ended (done, or rolled back).
  async swap() {
    const { page } = await signedInPage();
    await page.getByRole('link', { name: 'Backend' }).click();
    await page.locator('#backend-engine-state', { hasText: 'running' }).waitFor();
    // Every progress text the view shows, however briefly.
    await page.evaluate(() => {
      window.seenProgress = [];
      new MutationObserver(() => {
        const p = document.getElementById('backend-progress');
        if (p && window.seenProgress.at(-1) !== p.textContent) window.seenProgress.push(p.textContent);
      }).observe(document.getElementById('backend-body'), { childList: true, subtree: true, characterData: true });
    });
    await page.getByRole('button', { name: `Use ${args.backend}` }).click();
    await page.locator('#backend-progress').waitFor();
    await screenshot(page, 'swap-progress.png');
    const message = page.locator('#backend-message', { hasText: args.expect });
    await message.waitFor({ timeout: 90000 });
    await page.locator('#backend-progress').waitFor({ state: 'detached' });
    await screenshot(page, 'swap-done.png');
    return { message: await message.textContent(), progress: await page.evaluate(() => window.seenProgress),
             engine: await page.locator('#backend-engine-state').textContent(),
             buttonBack: await page.getByRole('button', { name: `Use ${args.backend}` }).isVisible() };
  },

  // Signed in, the page waits; berthd restarts meanwhile (the test does it once args.ready
  // exists), which ends every session: the page must say so and how to get back in.
  async 'session-end'() {
    const { page } = await signedInPage();
    await page.locator('#overview-body[data-loaded]').waitFor();
    writeFileSync(args.ready, 'signed in\n');
    const banner = page.locator('#banner', { hasText: 'session has ended' });
    await banner.waitFor({ timeout: 60000 });
    await screenshot(page, 'session-ended.png');
    return { banner: await banner.textContent() };
  },

  // The settings view is open while the test changes the greeting with berthctl (once
  // args.ready exists): the open form shows the new value without a reload.
  // The Kubernetes card: its phase, and Enable goes through the k8s feature's settings; once
  // the feature took it up, the card offers Disable.
  async kubernetes() {
    const { page } = await signedInPage();
    const phase = await page.locator('#kubernetes-phase').textContent();
    await page.getByRole('button', { name: 'Enable Kubernetes' }).click();
    const message = await page.locator('#kubernetes-message', { hasText: 'asked' }).textContent();
    await page.getByRole('button', { name: 'Disable Kubernetes' }).waitFor();
    await screenshot(page, 'kubernetes.png');
    return { phase, message, after: await page.locator('#kubernetes-phase').textContent() };
  },

  async 'live-settings'() {
    const { page } = await signedInPage();
    const form = await openSettings(page);
    const greeting = form.getByLabel('greeting', { exact: true });
    const before = await greeting.inputValue();
    // The change must find the page following the event stream, not still connecting.
    await page.locator('#connection', { hasText: 'Live' }).waitFor();
    writeFileSync(args.ready, 'form open\n');
    await page.waitForFunction((value) =>
      document.getElementById('setting-hello_feature-greeting')?.value === value, args.value, { timeout: 30000 });
    return { before, after: await greeting.inputValue(),
             source: await form.locator('#setting-hello_feature-greeting-desc').textContent() };
  },

  // Every view, reached with the keyboard alone (Tab to its link, Enter): every control has
  // a name a screen reader says, and at 200 % zoom (a 640 px wide window at twice the pixel
  // density) nothing needs sideways scrolling.
  async access() {
    const context = await browser.newContext({ viewport: { width: 640, height: 900 }, deviceScaleFactor: 2 });
    context.setDefaultTimeout(WAIT_MS);
    const page = await context.newPage();
    page.on('pageerror', (e) => pageLog.push(`page error: ${e.message}`));
    await page.goto(args.url);
    await page.locator('#overview-body[data-loaded]').waitFor();
    const views = [];
    for (const [link, body] of [['Overview', 'overview'], ['Settings', 'settings'], ['Backend', 'backend'],
                                ['Ports, events and diagnostics', 'activity']]) {
      // From the page's first stop (the skip link), Tab until the view's link has the focus, then Enter.
      await page.evaluate(() => { window.scrollTo(0, 0); document.querySelector('.skip').focus(); });
      let reached = false;
      for (let i = 0; i < 12 && !reached; ++i) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate((name) => document.activeElement?.textContent === name, link);
      }
      if (reached) await page.keyboard.press('Enter');
      await page.locator(`#${body}-body[data-loaded]`).waitFor();
      const unnamed = await page.evaluate((id) => {
        const named = (c) => (c.labels && c.labels.length > 0) || c.getAttribute('aria-label') ||
                             c.getAttribute('aria-labelledby') || (c.tagName === 'BUTTON' && c.textContent.trim()) ||
                             (c.tagName === 'A' && c.textContent.trim());
        return [...document.querySelectorAll(`#${id} input, #${id} select, #${id} textarea, #${id} button, #${id} a, #${id} progress`)]
          .filter((c) => !(c.tagName === 'PROGRESS' && c.closest('div')?.querySelector('label')) && !named(c))
          .map((c) => c.outerHTML.slice(0, 120));
      }, `view-${body}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      await screenshot(page, `zoom-${body}.png`);
      views.push({ view: body, reachedByKeyboard: reached, unnamed, overflow });
    }
    return { views, errors: pageLog };
  },

  // A page of another origin (another port on 127.0.0.1, so the browser does send the
  // SameSite=Strict cookie) tries to read and to change things through the API.
  async foreign() {
    const { page } = await signedInPage();
    await page.locator('#engine-state').waitFor();
    const server = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>another site</title><p>another origin</p>');
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const other = `http://127.0.0.1:${server.address().port}/`;
    try {
      await page.goto(other);
      const api = new URL(args.url).origin;
      const attempts = await page.evaluate(async (api) => {
        const attempt = async (name, path, init) => {
          try {
            const r = await fetch(api + path, { credentials: 'include', ...init });
            let body = '';
            try { body = await r.text(); } catch { body = ''; }
            return { name, type: r.type, status: r.status, body };
          } catch (e) {
            return { name, error: String(e) };
          }
        };
        const json = { 'Content-Type': 'application/json', 'X-Berth-CSRF': '1' };
        return [
          await attempt('read settings', '/v1/settings/hello.feature', {}),
          await attempt('read status', '/v1/status', {}),
          await attempt('patch with the CSRF header', '/v1/settings/hello.feature',
                        { method: 'PATCH', headers: json, body: JSON.stringify({ greeting: 'pwned' }) }),
          await attempt('no-cors disable', '/v1/plugins/hello.feature/disable',
                        { method: 'POST', mode: 'no-cors', body: 'x' }),
          await attempt('no-cors read', '/v1/settings/hello.feature', { mode: 'no-cors' }),
        ];
      }, api);
      return { origin: other, attempts };
    } finally {
      server.close();
    }
  },
};

let code = 0;
try {
  if (!scenarios[scenario]) throw new Error(`no scenario ${scenario}`);
  console.log(JSON.stringify(await scenarios[scenario]()));
} catch (e) {
  console.error(`browser.mjs: ${scenario}: ${e.stack || e}`);
  if (pageLog.length) console.error(`the page's log:\n  ${pageLog.join('\n  ')}`);
  code = 1;
} finally {
  await browser.close().catch(() => {});
  clearTimeout(deadline);
}
process.exit(code);
