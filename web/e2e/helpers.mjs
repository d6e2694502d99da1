// Shared pieces of the end-to-end tests: the server and users scripts/e2e.sh made, the
// browser, a test wrapper that gives every test a fresh browser context and keeps a
// screenshot of how it ended, an API client for set-up and clean-up, and waits on the
// xterm buffer of the terminal component (`el.sandlabTerm`).
//
// Environment (set by scripts/e2e.sh): SANDLAB_E2E_URL, SANDLAB_E2E_OUT,
// SANDLAB_E2E_{LEARNER,OTHER,ADMIN}[_PASSWORD], SANDLAB_E2E_CHROMIUM.
import { mkdirSync, appendFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';

import { chromium } from 'playwright-core';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the browser tests through scripts/e2e.sh`);
  return v;
}

/** The server's origin, exactly as SANDLAB_PUBLIC_URL (other origins are refused). */
export const BASE = env('SANDLAB_E2E_URL').replace(/\/$/, '');
export const OUT = process.env.SANDLAB_E2E_OUT ?? join(process.cwd(), 'test-output', 'e2e');
export const SHOTS = join(OUT, 'screenshots');
mkdirSync(SHOTS, { recursive: true });

export const USERS = {
  learner: { username: env('SANDLAB_E2E_LEARNER'), password: env('SANDLAB_E2E_LEARNER_PASSWORD') },
  other: { username: env('SANDLAB_E2E_OTHER'), password: env('SANDLAB_E2E_OTHER_PASSWORD') },
  admin: { username: env('SANDLAB_E2E_ADMIN'), password: env('SANDLAB_E2E_ADMIN_PASSWORD') },
};

const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let browser = null;
/** One browser per test file (each test gets its own context). */
export async function getBrowser() {
  if (!browser) {
    browser = await chromium.launch({
      executablePath: process.env.SANDLAB_E2E_CHROMIUM ?? '/usr/bin/chromium',
      args: LAUNCH_ARGS,
    });
  }
  return browser;
}
export async function closeBrowser() {
  const b = browser;
  browser = null;
  await b?.close();
}
after(closeBrowser);

const slug = (s) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 80);

/**
 * A test with a fresh browser context and page: `fn({ page, context, t, cleanup, shot })`.
 * Whatever the outcome, a screenshot of the page is saved under SHOTS (`…--FAILED.png`
 * when it failed, with the terminal's text in OUT/terminals.log), the page's console
 * errors and failed requests go to OUT/console.log, and the functions given to `cleanup`
 * run (last first) so a failed test leaves nothing running. An uncaught exception in the
 * page fails the test. Options: `timeout` (ms, required), `viewport`, `actionTimeout`.
 */
export function e2e(name, options, fn) {
  const file = basename(process.argv[1] ?? 'e2e', '.test.mjs');
  assert.ok(options.timeout > 0, `${name}: give the test a timeout`);
  test(name, { timeout: options.timeout }, async (t) => {
    const b = await getBrowser();
    const context = await b.newContext({
      baseURL: BASE,
      viewport: options.viewport ?? { width: 1400, height: 900 },
    });
    context.setDefaultTimeout(options.actionTimeout ?? 15_000);
    const page = await context.newPage();
    const lines = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') lines.push(`[${m.type()}] ${m.text()}`);
    });
    const pageErrors = [];
    page.on('pageerror', (e) => {
      pageErrors.push(String(e));
      lines.push(`[pageerror] ${e.stack ?? e}`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400) lines.push(`[http ${r.status()}] ${r.request().method()} ${r.url()}`);
    });
    const cleanups = [];
    const ctx = {
      page,
      context,
      t,
      cleanup: (f) => cleanups.push(f),
      /** A screenshot at a step (the final one is taken anyway). */
      shot: async (step) => {
        await page.screenshot({ path: join(SHOTS, `${file}--${slug(name)}--${slug(step)}.png`), fullPage: false }).catch(() => {});
      },
    };
    let failed = false;
    // Give up a little before node:test does, so a stuck test still gets its screenshot
    // and its clean-up (the abandoned steps fail fast once the context is closed).
    const inner = Math.max(options.timeout - 10_000, options.timeout * 0.8);
    let timer;
    const deadline = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the test took longer than ${inner} ms`)), inner);
    });
    try {
      await Promise.race([fn(ctx), deadline]);
      // An uncaught exception in the page is a bug even when the page looked right.
      assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      clearTimeout(timer);
      const path = join(SHOTS, `${file}--${slug(name)}${failed ? '--FAILED' : ''}.png`);
      await page.screenshot({ path, fullPage: false }).catch((e) => console.error(`screenshot failed: ${e}`));
      if (failed) {
        // What the terminal showed, for the failure report.
        const text = await termText(page).catch(() => null);
        if (text) appendFileSync(join(OUT, 'terminals.log'), `--- ${file}: ${name}\n${text}\n`);
      }
      if (lines.length) appendFileSync(join(OUT, 'console.log'), `--- ${file}: ${name}\n${lines.join('\n')}\n`);
      for (const f of cleanups.reverse()) {
        try {
          await f();
        } catch (e) {
          console.error(`cleanup after "${name}" failed: ${e}`);
        }
      }
      await context.close().catch(() => {});
    }
  });
}

// ---------------------------------------------------------------------------------------
// API (from Node, for set-up, checks and clean-up).

export class Api {
  constructor(cookies, csrf, user) {
    this.cookies = cookies;
    this.csrf = csrf;
    this.user = user;
  }

  /** Logs `who` ('learner' | 'other' | 'admin', or {username, password}) in. */
  static async login(who) {
    const u = typeof who === 'string' ? USERS[who] : who;
    const resp = await fetch(`${BASE}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: u.username, password: u.password }),
    });
    if (!resp.ok) throw new Error(`login of ${u.username} answered ${resp.status}: ${await resp.text()}`);
    const body = await resp.json();
    const cookies = resp.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .filter((c) => !c.endsWith('='))
      .join('; ');
    return new Api(cookies, body.csrf_token, body.user);
  }

  /** The raw response: `{ status, body }` (body parsed as JSON when it is). */
  async call(method, path, body) {
    const headers = { cookie: this.cookies, accept: 'application/json' };
    if (method !== 'GET') headers['x-csrf-token'] = this.csrf;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const resp = await fetch(`${BASE}/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await resp.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: resp.status, body: parsed };
  }

  /** The parsed body of a 2xx answer; anything else throws. */
  async ok(method, path, body) {
    const r = await this.call(method, path, body);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path} answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async startSession(lab) {
    return this.ok('POST', `/labs/${encodeURIComponent(lab)}/sessions`);
  }
  async endSession(id) {
    const r = await this.call('DELETE', `/sessions/${encodeURIComponent(id)}`);
    if (r.status !== 204 && r.status !== 404) throw new Error(`DELETE session ${id} answered ${r.status}`);
  }
  async createSandbox(req = {}) {
    return this.ok('POST', '/sandboxes', { image: 'debian', network: 'none', ttl: '15m', ...req });
  }
  async deleteSandbox(id) {
    const r = await this.call('DELETE', `/sandboxes/${encodeURIComponent(id)}`);
    if (r.status !== 204 && r.status !== 404) throw new Error(`DELETE sandbox ${id} answered ${r.status}`);
  }
}

/** Signs the browser context in through the API (the login form has its own test). */
export async function signInContext(context, who) {
  const u = typeof who === 'string' ? USERS[who] : who;
  const resp = await context.request.post(`${BASE}/api/v1/auth/login`, {
    data: { username: u.username, password: u.password },
  });
  assert.equal(resp.status(), 200, `login of ${u.username} through the API`);
  return (await resp.json()).user;
}

/** Signs in through the login form of the page (any path shows it when signed out). */
export async function signInForm(page, who, path = '/') {
  const u = typeof who === 'string' ? USERS[who] : who;
  await page.goto(path);
  await page.getByTestId('login-username').fill(u.username);
  await page.getByTestId('login-password').fill(u.password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('whoami').filter({ hasText: u.username }).waitFor();
}

// ---------------------------------------------------------------------------------------
// Polling.

/** Polls `f` (async, truthy = done) every `interval` ms until `timeout`; returns its value. */
export async function waitUntil(f, { timeout = 15_000, interval = 250, message = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${message} (last: ${last})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Rejects if `p` takes longer than `ms`. */
export function within(ms, p, what) {
  let timer;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
    }),
  ]);
}

// ---------------------------------------------------------------------------------------
// The terminal: reads `el.sandlabTerm.buffer.active` (joined wrapped lines).

export const termSelector = (node) => (node ? `[data-testid="terminal"][data-node="${node}"]` : '[data-testid="terminal"]');

/** The terminal's whole buffer (scrollback and screen) as text, one line per row. */
export async function termText(page, node) {
  return page.evaluate((sel) => {
    const el = document.querySelector(sel);
    const term = el && el.sandlabTerm;
    if (!term) return null;
    const b = term.buffer.active;
    let s = '';
    for (let i = 0; i < b.length; i++) {
      const line = b.getLine(i);
      if (!line) continue;
      if (i > 0 && !line.isWrapped) s += '\n';
      s += line.translateToString(true);
    }
    return s;
  }, termSelector(node));
}

/**
 * Waits until the terminal's buffer text matches `pattern` (a RegExp or a substring) and
 * returns the match (RegExp) or true. The RegExp is tried against the whole text with `m`.
 */
export async function waitForTerm(page, pattern, { timeout = 15_000, node } = {}) {
  const re = pattern instanceof RegExp ? { source: pattern.source, flags: pattern.flags } : null;
  try {
    const handle = await page.waitForFunction(
      ({ sel, re, sub }) => {
        const el = document.querySelector(sel);
        const term = el && el.sandlabTerm;
        if (!term) return false;
        const b = term.buffer.active;
        let s = '';
        for (let i = 0; i < b.length; i++) {
          const line = b.getLine(i);
          if (!line) continue;
          if (i > 0 && !line.isWrapped) s += '\n';
          s += line.translateToString(true);
        }
        if (re) {
          const flags = re.flags.includes('g') ? re.flags : re.flags + 'g';
          const all = [...s.matchAll(new RegExp(re.source, flags))];
          return all.length ? all[all.length - 1].slice(0) : false;
        }
        return s.includes(sub);
      },
      { sel: termSelector(node), re, sub: re ? null : pattern },
      { timeout, polling: 200 },
    );
    return handle.jsonValue();
  } catch (e) {
    const text = await termText(page, node).catch(() => null);
    throw new Error(`the terminal never showed ${pattern} within ${timeout} ms; it shows:\n${tail(text)}\n(${e.message.split('\n')[0]})`);
  }
}

function tail(text, n = 15) {
  if (text == null) return '(no terminal)';
  return text
    .split('\n')
    .filter((l) => l.trim())
    .slice(-n)
    .join('\n');
}

/** Waits for the terminal to be connected and a shell prompt (`…# ` or `…$ `) on the cursor line. */
export async function waitForPrompt(page, { timeout = 30_000, node } = {}) {
  const sel = termSelector(node);
  await page.locator(`${sel}[data-status="open"]`).waitFor({ timeout });
  try {
    await page.waitForFunction(
      (sel) => {
        const term = document.querySelector(sel)?.sandlabTerm;
        if (!term) return false;
        const b = term.buffer.active;
        const line = b.getLine(b.baseY + b.cursorY);
        return !!line && /[#$]\s*$/.test(line.translateToString(true)) && b.cursorX > 0;
      },
      sel,
      { timeout, polling: 200 },
    );
  } catch (e) {
    throw new Error(`no shell prompt in the terminal within ${timeout} ms; it shows:\n${tail(await termText(page, node))}`);
  }
}

/** Clicks into the terminal and types `line` plus Enter with the keyboard. */
export async function typeInTerm(page, line, { node, enter = true } = {}) {
  await page.locator(`${termSelector(node)} .xterm-screen`).click();
  await page.keyboard.type(line);
  if (enter) await page.keyboard.press('Enter');
}

/** A short random token for output markers. */
export const token = (prefix = 'e2e') => `${prefix}-${Math.random().toString(36).slice(2, 10)}`;

/** The session or sandbox id at the end of the page's path after `prefix`. */
export async function idFromUrl(page, prefix, timeout = 30_000) {
  const re = new RegExp(`${prefix}/([^/?#]+)$`);
  await page.waitForURL((u) => re.test(u.pathname), { timeout });
  return decodeURIComponent(new URL(page.url()).pathname.match(re)[1]);
}

export { assert };

/**
 * Drops the browser's TCP connections to the server the way a network failure does
 * (`ss -K` aborts the sockets: the WebSocket closes with 1006, no close frame), leaving
 * the server and everyone else's connections alone. Needs root (CAP_NET_ADMIN) and a
 * kernel with INET_DIAG_DESTROY. Returns how many connections were dropped.
 */
export function dropBrowserConnections() {
  const port = new URL(BASE).port;
  const browserPorts = () =>
    execFileSync('ss', ['-tnpH', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => /"chrom(e|ium)/.test(l))
      .map((l) => l.trim().split(/\s+/)[2]?.split(':').pop())
      .filter(Boolean);
  const ports = browserPorts();
  for (const p of ports) {
    // ss also tries other socket families and says "Invalid argument" for them: ignore it.
    execFileSync('ss', ['-K', 'state', 'established', `( dport = :${port} and sport = :${p} )`], { stdio: 'ignore' });
  }
  const left = browserPorts().filter((p) => ports.includes(p));
  if (left.length) throw new Error(`ss -K did not drop the browser's connections (${left}); it needs root and a kernel with INET_DIAG_DESTROY`);
  return ports.length;
}

/** The text of an element without its buttons (an ErrorMessage's "Try again"). */
export async function textWithoutButtons(locator) {
  return locator.evaluate((el) => {
    const c = el.cloneNode(true);
    c.querySelectorAll('button').forEach((b) => b.remove());
    return c.textContent;
  });
}

/** Asserts the `error` element shows a sentence: several words ending in a full stop (or ! ?). */
export async function assertErrorSentence(locator, what) {
  await locator.waitFor();
  const t = ((await textWithoutButtons(locator)) ?? '').trim();
  assert.ok(t.split(/\s+/).length >= 3 && /[.!?]$/.test(t), `${what} shows a sentence: "${t}"`);
  return t;
}
