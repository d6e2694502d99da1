// Organisations (issue 18 item 3): an admin creates an organisation on the Organisations
// page and adds a learner as its instructor; the instructor finds the page in the top bar
// and sees the members' progress table, per lab and for one lab; the organisation's caps
// are shown and saved by the admin. The organisation is deleted afterwards (the database
// is shared between runs).
import { Api, USERS, assert, e2e, signInForm } from './helpers.mjs';

const rand = () => Math.random().toString(36).slice(2, 8);

e2e('orgs: an admin creates an organisation with an instructor, who sees the progress table', { timeout: 90_000 }, async ({ page, context, cleanup, shot }) => {
  const admin = await Api.login('admin');
  const slug = `e2e-${rand()}`;
  cleanup(async () => {
    const r = await admin.call('DELETE', `/orgs/${slug}`);
    if (r.status !== 204 && r.status !== 404) throw new Error(`DELETE org answered ${r.status}`);
  });

  // The admin: the top bar links to the page; create the organisation there.
  await signInForm(page, 'admin', '/');
  await page.getByTestId('nav-orgs').click();
  await page.getByTestId('org-slug').fill(slug);
  await page.getByTestId('org-name').fill(`E2E ${slug}`);
  await page.getByTestId('org-create').click();
  await page.getByTestId('org-detail').filter({ hasText: `E2E ${slug}` }).waitFor();
  assert.equal(await page.getByTestId('org-select').inputValue(), (await admin.ok('GET', `/orgs/${slug}`)).id);

  // Caps: saved and shown as one line.
  await page.getByTestId('cap-sandboxes').fill('2');
  await page.getByTestId('cap-memory').fill('1G');
  await page.getByTestId('caps-save').click();
  await page.getByTestId('org-detail').filter({ hasText: '2 sandboxes at once · 1G memory' }).waitFor();
  const stored = await admin.ok('GET', `/orgs/${slug}`);
  assert.deepEqual([stored.limits.max_sandboxes, stored.limits.max_memory], [2, '1G']);

  // Add the learner as an instructor.
  const learner = USERS.learner.username;
  await page.getByTestId('member-user').fill(learner);
  await page.getByTestId('member-role').selectOption('instructor');
  await page.getByTestId('member-add').click();
  const row = page.locator(`[data-testid="org-members"] tr[data-username="${learner}"]`);
  await row.waitFor();
  assert.equal(await row.locator('select').inputValue(), 'instructor');
  await shot('admin-org');

  // The instructor: the link is there for them too; the progress table lists the members
  // with a column per lab, and narrows to one lab.
  await context.clearCookies();
  await signInForm(page, 'learner', '/');
  await page.getByTestId('nav-orgs').click();
  const table = page.getByTestId('org-progress');
  await table.waitFor();
  const mine = table.locator(`tr[data-username="${learner}"]`);
  await mine.waitFor();
  const headers = await table.locator('thead th').allTextContents();
  assert.ok(headers.length >= 2, `a column per lab: ${JSON.stringify(headers)}`);
  assert.match((await mine.locator('td').nth(1).textContent()) ?? '', /^\d+ \/ \d+$/);
  const options = await page.getByTestId('progress-lab').locator('option').evaluateAll((os) => os.map((o) => o.value));
  const oneLab = options.find((v) => v !== '');
  assert.ok(oneLab, 'the labs are offered');
  await page.getByTestId('progress-lab').selectOption(oneLab);
  await table.locator('thead th', { hasText: 'Tasks done' }).waitFor();
  // An instructor changes nothing: no caps form, no member form.
  assert.equal(await page.getByTestId('caps-save').count(), 0);
  assert.equal(await page.getByTestId('member-add').count(), 0);
  await shot('instructor-progress');

  // The API agrees: the instructor reads the progress, a plain member of nothing does not.
  const instructor = await Api.login('learner');
  const progress = await instructor.ok('GET', `/orgs/${slug}/progress?lab=${encodeURIComponent(oneLab)}`);
  assert.ok(progress.items.some((m) => m.username === learner));
  const other = await Api.login('other');
  assert.equal((await other.call('GET', `/orgs/${slug}/progress`)).status, 404);
});
