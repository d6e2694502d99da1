// Ports and tabs (issue 12): a learner serves a page in the nginx lab and sees it in the
// lab's "Website" tab; another user cannot open it; a share link opens it without a login
// until it expires. Then, from inside a sandbox, a WebSocket echo through the proxy and a
// hostile page that tries to read Sandlab's cookies and call the API as the learner.
import { readFileSync } from 'node:fs';

import { Api, BASE, assert, e2e, getBrowser, idFromUrl, signInContext, typeInTerm, waitForPrompt, waitUntil } from './helpers.mjs';

const LAB = 'nginx-first-page';
const APP = readFileSync(new URL('../../crates/sandlab/tests/probes/port_app.py', import.meta.url));

/** The port list of a sandbox, until `port` is in it; that port's entry. */
async function listening(api, sandbox, port) {
  return waitUntil(
    async () => {
      const r = await api.call('GET', `/sandboxes/${sandbox}/ports`);
      return r.status === 200 && r.body.items.find((p) => p.port === port);
    },
    { timeout: 30_000, message: `port ${port} to listen in ${sandbox}` },
  );
}

e2e('ports: the Website tab shows the page the learner serves, to them alone', { timeout: 360_000 }, async ({ page, context, cleanup, shot }) => {
  const api = await Api.login('learner');
  let sessionId = null;
  cleanup(async () => {
    if (sessionId) await api.endSession(sessionId);
  });
  await signInContext(context, 'learner');
  await page.goto(`/labs/${LAB}`);
  await page.getByTestId('start-lab').click();
  sessionId = await idFromUrl(page, '/sessions');
  // The init task installs nginx from Debian's archive.
  await page.locator('[data-testid="session-state"][data-state="ready"]').waitFor({ timeout: 240_000 });
  await waitForPrompt(page, { timeout: 60_000 });
  const tabs = page.getByRole('tablist', { name: 'Tabs' });
  await tabs.getByRole('tab', { name: 'Website' }).waitFor();
  assert.ok((await tabs.getByRole('tab').count()) >= 2, 'the lab declares a terminal and a Website tab');

  await typeInTerm(
    page,
    "sed -i 's/\\b80 default_server/8080 default_server/' /etc/nginx/sites-available/default && nginx && echo '<h1>Hello from Sandlab</h1>' > /var/www/html/index.html",
  );
  await page.locator('[data-testid="task-item"][data-task="own_page"][data-state="done"]').waitFor({ timeout: 30_000 });

  // The Website tab: the page, served from inside the sandbox through the proxy.
  await page.getByRole('tab', { name: 'Website' }).click();
  const site = page.frameLocator('iframe[title="Website"]');
  await site.getByText('Hello from Sandlab').waitFor({ timeout: 30_000 });
  await shot('website-tab');

  // The frame is on the proxy's origin, not the UI's.
  const src = await page.locator('iframe[title="Website"]').getAttribute('src');
  assert.ok(src && !src.startsWith(BASE), `the frame is on another origin (${src})`);

  // A port link in the lab text opens the same tab.
  await page.getByRole('tab', { name: 'node01' }).first().click();
  await page.locator('a.sandlab-port[data-port="8080"]').first().click();
  await site.getByText('Hello from Sandlab').waitFor({ timeout: 30_000 });

  // Another user: no sign-in for it through the API, and 403 at the port's address even
  // when signed in to Sandlab.
  const session = await api.ok('GET', `/sessions/${sessionId}`);
  const sandbox = session.nodes[0].sandbox;
  const port = await listening(api, sandbox, 8080);
  const other = await Api.login('other');
  const open = await other.call('POST', `/sandboxes/${sandbox}/ports/8080/open`, {});
  assert.equal(open.status, 404, JSON.stringify(open.body));
  const b = await getBrowser();
  const theirs = await b.newContext();
  cleanup(() => theirs.close());
  await signInContext(theirs, 'other');
  const refused = await theirs.request.get(port.url, { maxRedirects: 0 });
  assert.equal(refused.status(), 403, await refused.text());

  // The Share button makes a link in the page.
  await page.getByRole('tab', { name: 'Website' }).click();
  await page.getByRole('button', { name: 'Share', exact: true }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Create link' }).click();
  await waitUntil(async () => /__sandlab\/share\?token=/.test(await dialog.getByTestId('share-url').inputValue().catch(() => '')), {
    timeout: 10_000,
    message: 'a share link in the dialog',
  });
  await shot('share-dialog');
  await page.keyboard.press('Escape');

  // A short share link works without any login, then stops.
  const share = await api.ok('POST', `/sandboxes/${sandbox}/ports/8080/shares`, { ttl: '5s' });
  const anon = await b.newContext();
  cleanup(() => anon.close());
  const guest = await anon.newPage();
  await guest.goto(share.url);
  await guest.getByText('Hello from Sandlab').waitFor({ timeout: 15_000 });
  await new Promise((r) => setTimeout(r, 6_000));
  const late = await guest.reload();
  assert.equal(late.status(), 403, 'the share link ended with its expiry');
});

e2e('ports: a WebSocket echo works, and a hostile page reaches nothing of Sandlab', { timeout: 180_000 }, async ({ page, context, cleanup }) => {
  const api = await Api.login('learner');
  const sb = await api.createSandbox({ network: 'none' });
  cleanup(() => api.deleteSandbox(sb.id));
  const put = await fetch(`${BASE}/api/v1/sandboxes/${sb.id}/files?path=/srv/app.py`, {
    method: 'PUT',
    headers: { cookie: api.cookies, 'x-csrf-token': api.csrf, 'content-type': 'application/octet-stream' },
    body: APP,
  });
  assert.equal(put.status, 204, await put.text());
  await api.ok('POST', `/sandboxes/${sb.id}/exec`, {
    cmd: ['sh', '-c', 'setsid python3 /srv/app.py 8000 >/tmp/app.log 2>&1 </dev/null &'],
  });
  await listening(api, sb.id, 8000);
  const before = (await api.ok('GET', '/sandboxes')).items.length;

  // The learner is signed in to the UI in this browser: the page below tries to use that.
  await signInContext(context, 'learner');
  await page.goto('/');
  const { url } = await api.ok('POST', `/sandboxes/${sb.id}/ports/8000/open`, { path: `/hostile?ui=${encodeURIComponent(BASE)}` });
  await page.goto(url);
  await waitUntil(async () => (await page.title()) === 'done', { timeout: 20_000, message: 'the hostile page to finish' });
  const seen = JSON.parse(await page.locator('#out').textContent());
  assert.equal(seen.cookie, '', `the page reads no cookie: ${JSON.stringify(seen)}`);
  for (const key of ['api', 'post', 'same_origin']) {
    assert.ok(!/"items"|"id":"sb-/.test(seen[key]), `${key}: the API answered the page: ${seen[key]}`);
  }
  assert.ok(/^blocked|^40[13]/.test(seen.api), `reading the API from the page fails: ${seen.api}`);
  assert.ok(/^blocked|^40[134]/.test(seen.post), `posting to the API from the page fails: ${seen.post}`);
  assert.equal((await api.ok('GET', '/sandboxes')).items.length, before, 'the page created no sandbox');

  // A WebSocket from the page to the sandbox's echo server, through the proxy.
  const echoed = await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(location.href.replace(/^http/, 'ws').replace(/hostile.*$/, 'ws'));
        ws.onopen = () => ws.send('echo through the proxy');
        ws.onmessage = (m) => {
          resolve(m.data);
          ws.close();
        };
        ws.onerror = () => reject(new Error('the WebSocket failed'));
        setTimeout(() => reject(new Error('no echo within 10 s')), 10_000);
      }),
  );
  assert.equal(echoed, 'echo through the proxy');
});
