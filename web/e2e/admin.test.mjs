// The admin view: other users' sandboxes with their owner, killing one, and the charts
// drawn from /metrics. (Invites and password reset links: accounts.test.mjs.)
import { Api, assert, e2e, signInForm, waitUntil } from './helpers.mjs';

e2e("admin: sees another user's session and sandbox with the owner, ends and kills them; charts render", { timeout: 120_000 }, async ({ page, cleanup, shot }) => {
  const other = await Api.login('other');
  const sb = await other.createSandbox({ ttl: '10m' });
  cleanup(() => other.deleteSandbox(sb.id));
  const session = await other.startSession('text-processing-pipes');
  cleanup(() => other.endSession(session.id));

  await signInForm(page, 'admin', '/admin');
  await page.locator('header a[href="/admin"]').waitFor();
  await page.goto('/admin');

  const table = page.getByTestId('admin-sandboxes');
  await table.waitFor();
  const row = page.locator(`[data-testid="admin-sandbox-row"][data-id="${sb.id}"]`);
  await row.waitFor({ timeout: 20_000 });
  assert.match(await row.textContent(), new RegExp(other.user.username.replace(/[-]/g, '\\-')), 'the row names the owner');

  // The users table lists the owner too.
  await page.locator(`[data-testid="admin-user-row"][data-username="${other.user.username}"]`).waitFor();

  // Charts: an <svg> each.
  for (const id of ['chart-create-latency', 'chart-active-sandboxes']) {
    await page.locator(`[data-testid="${id}"] svg`).first().waitFor({ timeout: 20_000 });
  }
  await shot('before-kill');

  // The lab session, with its lab and owner; end it (click twice).
  const srow = page.locator(`[data-testid="admin-sessions"] [data-testid="admin-session-row"][data-id="${session.id}"]`);
  await srow.waitFor({ timeout: 20_000 });
  const stext = await srow.textContent();
  assert.ok(stext.includes(other.user.username) && stext.includes('text-processing-pipes'), `the session row names the owner and lab: ${stext}`);
  const end = srow.getByTestId('kill-session');
  await end.click();
  await end.click();
  await waitUntil(
    async () => {
      const r = await other.call('GET', `/sessions/${session.id}`);
      return r.status === 404 || r.body?.state === 'ended';
    },
    { timeout: 30_000, message: 'the ended session to be over for its owner' },
  );
  await waitUntil(async () => (await srow.count()) === 0 || /ended/i.test(await srow.textContent()), {
    timeout: 20_000,
    message: 'the session row to go',
  });

  // Kill the sandbox (a confirm button: click twice).
  const kill = row.getByTestId('kill-sandbox');
  await kill.click();
  await kill.click();
  await waitUntil(
    async () => {
      const r = await other.call('GET', `/sandboxes/${sb.id}`);
      return r.status === 404 || ['removed', 'stopping'].includes(r.body?.state);
    },
    { timeout: 30_000, message: 'the killed sandbox to be gone for its owner' },
  );
  // The row goes (or says it is no longer running).
  await waitUntil(
    async () => (await row.count()) === 0 || /removed|stopping/i.test(await row.textContent()),
    { timeout: 20_000, message: 'the row to go' },
  );
});
