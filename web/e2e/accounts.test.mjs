// Accounts (issue 18 item 1), against a server started with SANDLAB_SIGNUP=invite: an
// admin's invite link signs a learner up, who changes their password; a used-up invite is
// refused with the server's sentence; an admin's reset link sets a new password once; the
// sign-in page offers no sign-up link when sign-up is by invite.
import { Api, BASE, assert, assertErrorSentence, e2e, signInForm, textWithoutButtons } from './helpers.mjs';

const rand = () => Math.random().toString(36).slice(2, 10);

/** Disables an account the test made (the database is shared between runs). */
async function disable(admin, id) {
  await admin.ok('PATCH', `/users/${encodeURIComponent(id)}`, { disabled: true });
}

/** Signs out through the header and waits for the sign-in form. */
async function signOut(page) {
  await page.getByTestId('sign-out').click();
  await page.getByTestId('login-username').waitFor();
}

e2e('accounts: an invite link signs a learner up, who changes their password; the used-up invite is refused', { timeout: 90_000 }, async ({ page, cleanup, shot }) => {
  const admin = await Api.login('admin');
  const config = await (await fetch(`${BASE}/api/v1/auth/config`)).json();
  assert.equal(config.signup, 'invite', 'scripts/e2e.sh starts the server with sign-up by invite');

  // The admin makes a one-use learner invite on the admin page.
  await signInForm(page, 'admin', '/admin');
  await page.getByTestId('invite-role').selectOption('learner');
  await page.getByTestId('invite-expires').selectOption('7d');
  await page.getByTestId('invite-uses').fill('1');
  await page.getByTestId('create-invite').click();
  const link = page.getByTestId('invite-link');
  await link.waitFor();
  const url = await link.inputValue();
  assert.ok(url.startsWith(`${BASE}/signup?invite=`), `the full invite link is shown: ${url}`);
  const token = new URL(url).searchParams.get('invite');
  // Listed (this run's admin made only this one), without its token, not yet used.
  const listed = await admin.ok('GET', '/invites?limit=500');
  const mine = (Array.isArray(listed) ? listed : listed.items).filter((i) => i.created_by === admin.user.id);
  assert.equal(mine.length, 1, `one invite by this admin: ${JSON.stringify(mine)}`);
  const made = mine[0];
  cleanup(() => admin.call('DELETE', `/invites/${encodeURIComponent(made.id)}`));
  assert.ok(!made.token && !made.url, 'the list holds no token');
  const row = page.locator(`[data-testid="admin-invite-row"][data-id="${made.id}"]`);
  await row.waitFor();
  assert.match(await row.getByTestId('invite-used').textContent(), /^0 of 1$/);
  await shot('invite-made');

  // Signed out, the sign-in page offers no sign-up (it is by invite only).
  const configRead = page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/config'));
  await signOut(page);
  await configRead;
  await page.getByTestId('login-submit').waitFor();
  assert.equal(await page.getByTestId('signup-link').count(), 0, 'no sign-up link in invite mode');

  // The invite link: the invite is filled in; the repeated password is checked here.
  const username = `signup-${rand()}`;
  const first = `first-${rand()}-pw`;
  await page.goto(url);
  await page.getByTestId('signup-username').waitFor();
  assert.equal(await page.getByTestId('signup-invite').inputValue(), token, 'the invite comes from the link');
  await page.getByTestId('signup-username').fill(username);
  await page.getByTestId('signup-password').fill(first);
  await page.getByTestId('signup-repeat').fill(first + 'x');
  await page.getByTestId('signup-submit').click();
  assert.match(await assertErrorSentence(page.getByTestId('error'), 'a repeated password that differs'), /differ/);
  await page.getByTestId('signup-repeat').fill(first);
  await page.getByTestId('signup-submit').click();

  // Signed in at once, on the labs.
  await page.getByTestId('whoami').filter({ hasText: username }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/', 'a new account lands on the labs');
  await page.getByTestId('lab-card').first().waitFor();
  const me = await Api.login({ username, password: first });
  cleanup(() => disable(admin, me.user.id));
  assert.equal(me.user.role, 'learner', 'the invite gave its role');

  // The account page (the name in the top bar): a wrong current password is the
  // server's sentence; the right one changes it.
  await page.getByTestId('whoami').click();
  await page.getByTestId('password-current').waitFor();
  const second = `second-${rand()}-pw`;
  await page.getByTestId('password-current').fill('not-the-password');
  await page.getByTestId('password-new').fill(second);
  await page.getByTestId('password-repeat').fill(second);
  await page.getByTestId('password-submit').click();
  await assertErrorSentence(page.getByTestId('error'), 'a wrong current password');
  await page.getByTestId('password-current').fill(first);
  await page.getByTestId('password-submit').click();
  await page.getByTestId('password-changed').filter({ hasText: /changed/ }).waitFor();
  await shot('password-changed');

  // Out and in again with the new password; the old one no longer signs in. (Whether the
  // change also ended this login is the server's choice: either way, sign in again.)
  await page.goto('/');
  await page.locator('[data-testid="whoami"], [data-testid="login-username"]').first().waitFor();
  if (await page.getByTestId('whoami').count()) await signOut(page);
  await signInForm(page, { username, password: second }, '/');
  await assert.rejects(Api.login({ username, password: first }), /401/, 'the old password still signs in');

  // The invite is used up: the same link is refused with the server's own sentence.
  await signOut(page);
  await page.goto(url);
  await page.getByTestId('signup-username').fill(`again-${rand()}`);
  await page.getByTestId('signup-password').fill(first);
  await page.getByTestId('signup-repeat').fill(first);
  await page.getByTestId('signup-submit').click();
  const shown = (await assertErrorSentence(page.getByTestId('error'), 'a used-up invite')).trim();
  const direct = await fetch(`${BASE}/api/v1/auth/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: `again-${rand()}`, password: first, invite: token }),
  });
  assert.ok([400, 403].includes(direct.status), `a used-up invite is refused: ${direct.status}`);
  assert.equal(shown, (await direct.json()).error.message, "the page shows the server's sentence");
  assert.equal(await page.getByTestId('whoami').count(), 0, 'nobody is signed in');
});

e2e('accounts: an admin makes a reset link, shown once, that sets a new password once', { timeout: 90_000 }, async ({ page, cleanup, shot }) => {
  const admin = await Api.login('admin');
  const username = `reset-${rand()}`;
  const old = `old-${rand()}-pw`;
  const user = await admin.ok('POST', '/users', { username, password: old, role: 'learner' });
  cleanup(() => disable(admin, user.id));

  await signInForm(page, 'admin', '/admin');
  const row = page.locator(`[data-testid="admin-user-row"][data-username="${username}"]`);
  await row.waitFor({ timeout: 20_000 });
  await row.getByTestId('reset-password').click();
  const link = page.getByTestId('reset-link');
  await link.waitFor();
  const url = await link.inputValue();
  assert.ok(url.startsWith(`${BASE}/reset?token=`), `the full reset link is shown: ${url}`);
  assert.match(await textWithoutButtons(page.getByTestId('reset-link-box')), new RegExp(username), 'the link names the user');
  await shot('reset-link');
  // Shown once: a reload does not bring it back.
  await page.reload();
  await page.getByTestId('admin-users').waitFor();
  assert.equal(await page.getByTestId('reset-link').count(), 0, 'the reset link is shown again after a reload');

  // The link, signed out: the new password twice, then sign in with it.
  await signOut(page);
  const fresh = `fresh-${rand()}-pw`;
  await page.goto(url);
  await page.getByTestId('reset-new').fill(fresh);
  await page.getByTestId('reset-repeat').fill(fresh.toUpperCase());
  await page.getByTestId('reset-submit').click();
  assert.match(await assertErrorSentence(page.getByTestId('error'), 'a repeated password that differs'), /differ/);
  await page.getByTestId('reset-repeat').fill(fresh);
  await page.getByTestId('reset-submit').click();
  await page.getByTestId('reset-done').waitFor();
  await page.getByTestId('reset-done').getByRole('link').click();
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(fresh);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('whoami').filter({ hasText: username }).waitFor();
  await assert.rejects(Api.login({ username, password: old }), /401/, 'the old password still signs in');

  // The link works once: a second use is the server's sentence.
  await signOut(page);
  await page.goto(url);
  await page.getByTestId('reset-new').fill(`other-${rand()}-pw`);
  await page.getByTestId('reset-repeat').fill(await page.getByTestId('reset-new').inputValue());
  await page.getByTestId('reset-submit').click();
  await assertErrorSentence(page.getByTestId('error'), 'a used reset link');
  await Api.login({ username, password: fresh });
});
