// The playground: start a sandbox from an image, write a file in the editor, save it
// through the files API, read it back with `cat` in the terminal and find it in the tree.
import { Api, assert, BASE, e2e, idFromUrl, signInContext, token, typeInTerm, waitForPrompt, waitForTerm } from './helpers.mjs';

e2e('playground: start, save a file in the editor, cat it in the terminal', { timeout: 150_000 }, async ({ page, context, cleanup, shot }) => {
  const api = await Api.login('learner');
  let sandbox = null;
  cleanup(async () => {
    if (sandbox) await api.deleteSandbox(sandbox);
  });
  await signInContext(context, 'learner');

  await page.goto('/playground');
  const image = page.getByTestId('image-select');
  // The image list comes from GET /images; debian is built for the tests.
  await page.locator('[data-testid="image-select"] option[value="debian"]').waitFor({ state: 'attached' });
  await image.selectOption('debian');
  await page.getByTestId('start-playground').click();
  sandbox = await idFromUrl(page, '/playground', 60_000);
  assert.match(sandbox, /^sb-/);
  await waitForPrompt(page, { timeout: 60_000 });

  // A new file: its path, then text typed into CodeMirror, then Save.
  const path = '/root/e2e-note.txt';
  const text = `hello from the editor ${token('note')}`;
  await page.getByTestId('file-path').fill(path);
  await page.locator('[data-testid="editor"] .cm-content').click();
  await page.keyboard.type(text);
  await page.getByTestId('save-file').click();
  await page.locator('[data-testid="save-status"]', { hasText: /^Saved$/ }).waitFor();
  await shot('saved');

  // The shell sees the same bytes.
  await typeInTerm(page, `cat ${path} && echo && echo cat-exit-$?`);
  await waitForTerm(page, new RegExp(`^${text}$`, 'm'));
  await waitForTerm(page, /^cat-exit-0$/m);
  // And so does the files API.
  const r = await fetch(`${BASE}/api/v1/sandboxes/${sandbox}/files?path=${encodeURIComponent(path)}`, {
    headers: { cookie: api.cookies },
  });
  assert.equal(r.status, 200);
  assert.equal(await r.text(), text);

  // A file made in the shell shows in the tree after a refresh; the saved one after a reload.
  await typeInTerm(page, 'echo from-the-shell > /root/e2e-shell.txt && echo made-$((20+1))');
  await waitForTerm(page, /^made-21$/m);
  await page.getByTestId('refresh-files').click();
  await page.locator('[data-testid="file-entry"][data-path="/root/e2e-shell.txt"]').waitFor();
  await page.reload();
  const entry = page.locator(`[data-testid="file-tree"] [data-testid="file-entry"][data-path="${path}"]`);
  await entry.waitFor();
  assert.equal(await entry.getAttribute('data-kind'), 'file');
  // Opening it shows the saved text in the editor.
  await entry.click();
  await page.locator('[data-testid="editor"] .cm-content', { hasText: text }).waitFor();
  assert.equal(await page.getByTestId('file-path').inputValue(), path);
  await shot('reopened');

  // Edit it and save with Ctrl+S: unsaved changes are flagged, then saved.
  await page.locator('[data-testid="editor"] .cm-content').click();
  await page.keyboard.press('Control+End');
  await page.keyboard.type(' v2');
  await page.locator('[data-testid="save-status"]', { hasText: /unsaved/i }).waitFor();
  await page.keyboard.press('Control+S');
  await page.locator('[data-testid="save-status"]', { hasText: /^Saved$/ }).waitFor();
  const again = await fetch(`${BASE}/api/v1/sandboxes/${sandbox}/files?path=${encodeURIComponent(path)}`, { headers: { cookie: api.cookies } });
  assert.equal(await again.text(), `${text} v2`);

  // Typing another file's path and pressing Enter opens it and never writes (it used to
  // save the open buffer over it); saving under an existing file's path asks first.
  const read = async (p) =>
    (await fetch(`${BASE}/api/v1/sandboxes/${sandbox}/files?path=${encodeURIComponent(p)}`, { headers: { cookie: api.cookies } })).text();
  const hostname = await read('/etc/hostname');
  await page.getByTestId('file-path').fill('/etc/hostname');
  await page.getByTestId('file-path').press('Enter');
  await page.locator('[data-testid="editor"] .cm-content', { hasText: hostname.trim() }).waitFor();
  assert.equal(await read('/etc/hostname'), hostname);
  assert.equal(await read(path), `${text} v2`);
  await page.getByTestId('file-path').fill('/root/e2e-shell.txt');
  await page.getByTestId('save-file').click();
  await page.getByTestId('confirm-replace').waitFor();
  assert.equal(await read('/root/e2e-shell.txt'), 'from-the-shell\n');
  await shot('asks-before-replacing');
  await page.getByTestId('replace-file').click();
  await page.locator('[data-testid="save-status"]', { hasText: /^Saved$/ }).waitFor();
  assert.equal(await read('/root/e2e-shell.txt'), hostname);

  // The playground list shows it; opening it again brings back the same terminal.
  await page.goto('/playground');
  const item = page.locator(`[data-testid="playground-item"][data-id="${sandbox}"]`);
  await item.waitFor();
  await item.locator(`a[href="/playground/${sandbox}"]`).first().click();
  await page.waitForURL(`**/playground/${sandbox}`);
  await page.locator('[data-testid="terminal"][data-status="open"]').waitFor({ timeout: 30_000 });
  await waitForTerm(page, /^made-21$/m);

  // Stop it from the page (click twice); the API then has it gone.
  const stop = page.getByTestId('stop-playground');
  await stop.click();
  await stop.click();
  await page.waitForURL('**/playground');
  const gone = await api.call('GET', `/sandboxes/${sandbox}`);
  assert.ok(gone.status === 404 || ['removed', 'stopping'].includes(gone.body?.state), `the sandbox is gone (${gone.status} ${gone.body?.state})`);
  await page.locator(`[data-testid="playground-item"][data-id="${sandbox}"]`).waitFor({ state: 'detached' });
});
