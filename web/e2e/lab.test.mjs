// The learner's main path: sign in, open a demo lab from the catalogue, start it, wait for
// the shell, type a task's solution, see the task turn done live, reload and see it still
// done with the terminal's scrollback back, then stop the session.
import { Api, assert, e2e, idFromUrl, signInContext, signInForm, termText, typeInTerm, waitForPrompt, waitForTerm, waitUntil } from './helpers.mjs';

// labs/files-and-permissions: one node (debian, network none); its first checked task
// `run_script` is solved by `chmod 755 /usr/local/bin/hello`.
const LAB = 'files-and-permissions';
const TASK = 'run_script';
const SOLVE = 'chmod 755 /usr/local/bin/hello';

e2e('lab flow: sign in, start a lab, solve a task in the terminal, reload', { timeout: 180_000 }, async ({ page, cleanup, shot }) => {
  const api = await Api.login('learner');
  let sessionId = null;
  cleanup(async () => {
    if (sessionId) await api.endSession(sessionId);
  });

  // Signed out, any page shows the login form.
  await signInForm(page, 'learner', '/');

  // The catalogue lists the demo labs; open the lab's card.
  const card = page.locator(`[data-testid="lab-card"][data-slug="${LAB}"]`);
  await card.waitFor();
  assert.ok((await page.getByTestId('lab-card').count()) > 1, 'the catalogue shows the demo labs');
  await card.locator(`a[href="/labs/${LAB}"]`).first().click();
  await page.waitForURL(`**/labs/${LAB}`);

  // Start it: a session page with the lab text, the task list and a terminal.
  await page.getByTestId('start-lab').click();
  sessionId = await idFromUrl(page, '/sessions');
  await page.getByTestId('lab-text').waitFor();
  const task = page.locator(`[data-testid="task-item"][data-task="${TASK}"]`);
  await task.waitFor();
  // Init tasks (user accounts, files) run before the session is ready.
  await page.locator('[data-testid="session-state"][data-state="ready"]').waitFor({ timeout: 60_000 });
  assert.notEqual(await task.getAttribute('data-state'), 'done', 'the task is not done before the learner acts');
  await waitForPrompt(page, { timeout: 60_000 });
  // The terminal has the focus: the learner can type at once (issue 13 item 5).
  await waitUntil(() => page.evaluate(() => !!document.activeElement?.closest('[data-testid="terminal"]')), {
    timeout: 5_000,
    message: 'the terminal to have the focus when the lab starts',
  });
  await shot('ready');

  // Type the solution with the keyboard; the checker turns the task done live (SSE).
  const boxes = () =>
    page.getByTestId('task-item').evaluateAll((els) =>
      els.map((e) => {
        const r = e.getBoundingClientRect();
        return `${e.getAttribute('data-task')} y=${Math.round(r.y)} h=${Math.round(r.height)}`;
      }),
    );
  const layoutBefore = await boxes();
  await typeInTerm(page, SOLVE);
  await page.locator(`[data-testid="task-item"][data-task="${TASK}"][data-state="done"]`).waitFor({ timeout: 20_000 });
  // No layout jump: every item keeps its place and height when one turns done.
  assert.deepEqual(await boxes(), layoutBefore, 'the task list keeps its layout');
  // Only that task: the next one is still open.
  const otherStates = await page
    .locator(`[data-testid="task-item"]:not([data-task="${TASK}"])`)
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-state')));
  assert.ok(otherStates.length > 0 && !otherStates.includes('done'), `other tasks stay open (${otherStates})`);
  await shot('task-done');

  // The API agrees.
  const view = await api.ok('GET', `/sessions/${sessionId}`);
  assert.equal(view.tasks.find((t) => t.id === TASK)?.state, 'done');

  // Reload: still done, and the terminal reconnects with the earlier command in its scrollback.
  await page.reload();
  await page.locator(`[data-testid="task-item"][data-task="${TASK}"][data-state="done"]`).waitFor({ timeout: 20_000 });
  await page.locator('[data-testid="terminal"][data-status="open"]').waitFor({ timeout: 30_000 });
  await waitForTerm(page, SOLVE, { timeout: 15_000 });
  await shot('after-reload');

  // My progress lists the lab as in progress, with a way back into the running session.
  await page.locator('header a[href="/progress"]').click();
  const item = page.locator(`[data-testid="progress-item"][data-slug="${LAB}"]`);
  await item.waitFor();
  assert.equal(await item.getAttribute('data-progress'), 'in-progress');
  await item.locator(`a[href="/sessions/${sessionId}"]`).click();
  await page.waitForURL(`**/sessions/${sessionId}`);
  await page.locator('[data-testid="terminal"][data-status="open"]').waitFor({ timeout: 30_000 });

  // A run button on an {exec} block types it into the terminal (and runs it): the stat
  // line shows the mode the learner just set.
  await page.getByTestId('run-button').first().click();
  await waitForTerm(page, /^-rwxr-xr-x 755 root:root \/usr\/local\/bin\/hello$/m);

  // A hint on request, for a task not done yet.
  await page.locator('[data-testid="hint-button"][data-task="private_notes"]').click();
  const hint = page.locator('[data-testid="hint"][data-task="private_notes"]');
  await hint.waitFor();
  assert.match(await hint.textContent(), /chown alice:alice/);
  await shot('run-and-hint');

  // A tablet-wide window stacks the lab text above the terminal (full width, not side by side).
  await page.setViewportSize({ width: 768, height: 1000 });
  await waitUntil(
    async () => {
      const text = await page.getByTestId('lab-text').boundingBox();
      const term = await page.locator('[data-testid="terminal"]').first().boundingBox();
      return text && term && term.y > text.y + 50 && Math.abs(term.x - text.x) < 40 && term.width > 768 * 0.8;
    },
    { timeout: 5_000, message: 'the lab text above a full-width terminal at 768 px' },
  );
  // The text has room: at least half of the first screen shows lab text, not the task list
  // (the walkthrough saw three lines under the task list at 768x1024).
  await page.setViewportSize({ width: 768, height: 1024 });
  const textRoom = await page.evaluate(() => {
    const text = document.querySelector('[data-testid="lab-text"]').getBoundingClientRect();
    const pane = document.querySelector('section.session-text').getBoundingClientRect();
    return Math.min(text.bottom, pane.bottom, window.innerHeight) - Math.max(text.top, pane.top, 0);
  });
  assert.ok(textRoom >= 1024 * 0.3, `the lab text shows ${Math.round(textRoom)} px of a 1024 px screen`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no sideways scrolling at 768 px (the page is ${overflow}px wider than the window)`);
  await shot('tablet');
  await page.setViewportSize({ width: 1400, height: 900 });

  // The terminal follows the theme switch.
  const termBg = () => page.evaluate(() => document.querySelector('[data-testid="terminal"]').sandlabTerm.options.theme.background);
  const bgBefore = await termBg();
  await page.getByTestId('theme-toggle').click();
  await waitUntil(async () => (await termBg()) !== bgBefore, { timeout: 5_000, message: 'the terminal to take the other theme' });
  await shot('other-theme');

  // Stop it from the page (a confirm button: click twice).
  const stop = page.getByTestId('stop-session');
  await stop.click();
  await stop.click();
  await page.getByTestId('session-expired').waitFor({ timeout: 30_000 });
  // The session is gone (or ended), and so are its machines.
  await waitUntil(
    async () => {
      const r = await api.call('GET', `/sessions/${sessionId}`);
      return r.status === 404 || r.body?.state === 'ended';
    },
    { timeout: 30_000, message: 'the session to end' },
  );
  for (const n of view.nodes) {
    await waitUntil(
      async () => {
        const r = await api.call('GET', `/sandboxes/${n.sandbox}`);
        return r.status === 404 || ['removed', 'stopping'].includes(r.body?.state);
      },
      { timeout: 30_000, message: `the sandbox of ${n.name} to go` },
    );
  }
});

e2e('lab with three machines: a terminal per node, switched with tabs', { timeout: 150_000 }, async ({ page, context, cleanup, shot }) => {
  const api = await Api.login('learner');
  const session = await api.startSession('three-node-cluster');
  cleanup(() => api.endSession(session.id));
  await signInContext(context, 'learner');
  await page.goto(`/sessions/${session.id}`);
  await page.locator('[data-testid="session-state"][data-state="ready"]').waitFor({ timeout: 90_000 });
  const tabs = await page.getByTestId('node-tab').evaluateAll((els) => els.map((e) => e.getAttribute('data-node')));
  assert.deepEqual(tabs, ['node01', 'node02', 'node03']);
  for (const node of ['node02', 'node03', 'node01']) {
    await page.locator(`[data-testid="node-tab"][data-node="${node}"]`).click();
    await page.locator(`[data-testid="terminal"][data-node="${node}"]`).waitFor({ state: 'visible' });
    await waitForPrompt(page, { node, timeout: 30_000 });
    await typeInTerm(page, 'echo "on-$(hostname)"', { node });
    await waitForTerm(page, new RegExp(`^on-${node}$`, 'm'), { node });
  }
  // Each terminal is its own machine's: node02's output is not in node01's terminal.
  const node01 = await termText(page, 'node01');
  assert.ok(!/^on-node02$/m.test(node01), "node02's output stays in node02's terminal");
  await shot('node01');

  // A block written for node03 ({exec node=node03}) says so and runs there, whatever
  // tab is active (issue 13 item 3: Run typed into the active tab).
  const run = page.locator('[data-testid="run-button"][data-node="node03"]').first();
  assert.match(await run.textContent(), /Run on node03/);
  await run.click();
  await page.locator('[data-testid="node-tab"][data-node="node03"][aria-selected="true"]').waitFor({ timeout: 5_000 });
  await page.locator('[data-testid="terminal"][data-node="node03"]').waitFor({ state: 'visible' });

  // The timer counts down; Extend moves the deadline out again.
  assert.match(await page.getByTestId('session-timer').textContent(), /\d+:\d\d/);
  const before = (await api.ok('GET', `/sessions/${session.id}`)).expires_at_ms;
  await page.getByTestId('extend-session').click();
  await waitUntil(async () => (await api.ok('GET', `/sessions/${session.id}`)).expires_at_ms > before, {
    timeout: 10_000,
    message: 'Extend to move the deadline',
  });

  // Ended elsewhere (another tab, an admin, the deadline): the page says so, live.
  await api.endSession(session.id);
  await page.getByTestId('session-expired').waitFor({ timeout: 30_000 });
  const said = (await page.getByTestId('session-expired').textContent()).trim();
  assert.ok(said.split(/\s+/).length >= 3, `the ended session is explained: "${said}"`);
  await shot('ended');
});
