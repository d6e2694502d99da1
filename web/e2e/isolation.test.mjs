// One learner cannot see or reach another's lab session, playground or terminal, by URL
// in the browser or through the API.
import { Api, assert, assertErrorSentence, BASE, e2e, signInForm, waitUntil } from './helpers.mjs';

e2e("isolation: a second user cannot open the first user's session, playground or terminal", { timeout: 120_000 }, async ({ page, cleanup, shot }) => {
  const a = await Api.login('learner');
  const b = await Api.login('other');
  const session = await a.startSession('shell-environment');
  cleanup(() => a.endSession(session.id));
  const sandbox = await a.createSandbox();
  cleanup(() => a.deleteSandbox(sandbox.id));
  // A's session has its machine before B looks (so there is a terminal to steal).
  const running = await waitUntil(
    async () => {
      const s = await a.ok('GET', `/sessions/${session.id}`);
      return s.nodes.length > 0 && s.state !== 'starting' ? s : null;
    },
    { timeout: 60_000, message: "A's session to start" },
  );
  assert.equal(running.state, 'ready');

  await signInForm(page, 'other', `/sessions/${session.id}`);
  // Signing in lands on the asked-for page or the catalogue: go to A's session either way.
  await page.goto(`/sessions/${session.id}`);
  await assertErrorSentence(page.getByTestId('error').first(), "the session page of another user's session");
  assert.equal(await page.getByTestId('terminal').count(), 0, 'no terminal on the session page');
  assert.equal(await page.getByTestId('lab-text').count(), 0, 'no lab text on the session page');
  await shot('session');

  await page.goto(`/playground/${sandbox.id}`);
  await assertErrorSentence(page.getByTestId('error').first(), "the playground page of another user's sandbox");
  assert.equal(await page.getByTestId('terminal').count(), 0, 'no terminal on the playground page');
  assert.equal(await page.getByTestId('file-tree').count(), 0, 'no file tree on the playground page');
  await shot('playground');

  // The terminal WebSocket of A's sandboxes does not open for B (with B's cookie and our origin).
  const node = running.nodes[0].sandbox;
  const opened = await page.evaluate(
    (urls) =>
      Promise.all(
        urls.map(
          (u) =>
            new Promise((resolve) => {
              const ws = new WebSocket(u);
              ws.binaryType = 'arraybuffer';
              let data = false;
              ws.onmessage = () => (data = true);
              ws.onopen = () => setTimeout(() => (ws.close(), resolve({ u, open: true, data })), 1000);
              ws.onerror = () => resolve({ u, open: false, data });
              ws.onclose = () => resolve({ u, open: false, data });
            }),
        ),
      ),
    [node, sandbox.id].map((id) => `${BASE.replace(/^http/, 'ws')}/api/v1/sandboxes/${id}/terminal?name=main`),
  );
  for (const o of opened) assert.ok(!o.open && !o.data, `B's WebSocket to ${o.u} was refused`);

  // The API answers B as if they did not exist, and B cannot stop them.
  assert.equal((await b.call('GET', `/sessions/${session.id}`)).status, 404);
  assert.equal((await b.call('GET', `/sandboxes/${sandbox.id}`)).status, 404);
  assert.equal((await b.call('GET', `/sandboxes/${node}`)).status, 404);
  assert.equal((await b.call('DELETE', `/sessions/${session.id}`)).status, 404);
  assert.equal((await b.call('DELETE', `/sandboxes/${sandbox.id}`)).status, 404);
  assert.equal((await b.call('POST', `/sandboxes/${sandbox.id}/exec`, { cmd: ['true'] })).status, 404);
  const listed = await b.ok('GET', '/sandboxes?limit=500');
  assert.ok(!listed.items.some((s) => s.id === sandbox.id || s.id === node), "A's sandboxes are not in B's list");
  const sessions = await b.ok('GET', '/sessions');
  assert.ok(!sessions.items.some((s) => s.id === session.id), "A's session is not in B's list");
  // A's things still run.
  assert.equal((await a.ok('GET', `/sandboxes/${sandbox.id}`)).state, 'running');
  assert.equal((await a.ok('GET', `/sessions/${session.id}`)).state, 'ready');
});
