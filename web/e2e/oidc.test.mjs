// Single sign-on (issue 18 item 2), against a server whose config has the provider `e2e`:
// the real OpenID provider of tests/oidc (oidc-provider), started by scripts/e2e.sh. The
// sign-in page shows its button; the provider's login and consent pages sign a new person
// in, who lands signed in on the page asked for, with an account made for them; a second
// sign-in reuses it; a refusal comes back as a sentence on the sign-in page.
import { Api, BASE, assert, e2e } from './helpers.mjs';

const rand = () => Math.random().toString(36).slice(2, 10);

/** Goes through the provider's pages (login, consent) as `login`, whichever it shows. */
async function atProvider(page, login) {
  for (let i = 0; i < 4; i++) {
    await page.waitForURL((u) => u.origin === BASE || u.pathname.startsWith('/interaction/'));
    if (new URL(page.url()).origin === BASE) return;
    const name = page.locator('input[name="login"]');
    if (await name.count()) {
      await name.fill(login);
      await page.locator('input[name="password"]').fill('anything');
    }
    const here = page.url();
    await page.locator('button[type="submit"]').click();
    await page.waitForURL((u) => u.toString() !== here);
  }
}

e2e('oidc: signing in through the OpenID provider makes an account once and signs the browser in', { timeout: 90_000 }, async ({ page, cleanup, shot }) => {
  const admin = await Api.login('admin');
  const config = await (await fetch(`${BASE}/api/v1/auth/config`)).json();
  const provider = config.providers.find((p) => p.name === 'e2e');
  assert.ok(provider, `scripts/e2e.sh configures the provider e2e: ${JSON.stringify(config)}`);
  assert.equal(provider.start_url, '/api/v1/auth/oidc/e2e/start');

  // The sign-in page offers it.
  await page.goto('/labs');
  const button = page.getByTestId('login-provider-e2e');
  await button.waitFor();
  assert.equal((await button.textContent()).trim(), 'Sign in with the test provider');
  await shot('sign-in-page');

  // The provider's own pages: any login name (its development sign-in), then consent.
  const login = `e2e-sso-${rand()}`;
  await button.click();
  await page.locator('input[name="login"]').waitFor();
  await shot('provider-login');
  await atProvider(page, login);

  // Back at Sandlab, signed in as a new learner.
  await page.getByTestId('whoami').filter({ hasText: login }).waitFor();
  const me = await page.evaluate(async () => (await fetch('/api/v1/me')).json());
  assert.equal(me.username, login);
  assert.equal(me.role, 'learner');
  cleanup(() => admin.ok('PATCH', `/users/${encodeURIComponent(me.id)}`, { disabled: true }));
  await shot('signed-in');

  // Signed out, a second sign-in through the provider reuses the account.
  await page.getByTestId('sign-out').click();
  await page.getByTestId('login-provider-e2e').click();
  await atProvider(page, login);
  await page.getByTestId('whoami').filter({ hasText: login }).waitFor();
  const again = await page.evaluate(async () => (await fetch('/api/v1/me')).json());
  assert.equal(again.id, me.id, 'the same account');

  // A disabled account is refused, with the server's sentence on the sign-in page.
  await admin.ok('PATCH', `/users/${encodeURIComponent(me.id)}`, { disabled: true });
  await page.goto('/login');
  await page.getByTestId('login-provider-e2e').click();
  await atProvider(page, login);
  await page.getByText('Your account is disabled; ask an admin.').waitFor();
  assert.equal(new URL(page.url()).pathname, '/login');
  await shot('refused');
});
