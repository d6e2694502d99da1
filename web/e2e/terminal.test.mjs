// Terminal quality: copy and paste, resize following the window, reconnecting by itself
// after a dropped connection with the scrollback shown again, and a long burst of output
// that neither freezes the page nor loses the end.
import {
  Api,
  assert,
  BASE,
  dropBrowserConnections,
  e2e,
  signInContext,
  termSelector,
  termText,
  token,
  typeInTerm,
  waitForPrompt,
  waitForTerm,
  waitUntil,
  within,
} from './helpers.mjs';

/** A playground sandbox of the learner's, opened in the page with its terminal ready. */
async function openTerminal({ page, context, cleanup }) {
  const api = await Api.login('learner');
  const sb = await api.createSandbox();
  cleanup(() => api.deleteSandbox(sb.id));
  await signInContext(context, 'learner');
  await page.goto(`/playground/${sb.id}`);
  await waitForPrompt(page, { timeout: 60_000 });
  return sb;
}

const clipboard = (page) => page.evaluate(() => navigator.clipboard.readText());

/** Where on the page the last buffer line that is exactly `word` shows (its middle). */
function wordOnScreen(page, word) {
  return page.evaluate(
    ({ sel, word }) => {
      const el = document.querySelector(sel);
      const term = el.sandlabTerm;
      const b = term.buffer.active;
      let row = -1;
      for (let i = b.length - 1; i >= 0; i--) {
        if (b.getLine(i)?.translateToString(true) === word) {
          row = i;
          break;
        }
      }
      const r = el.querySelector('.xterm-screen').getBoundingClientRect();
      const cw = r.width / term.cols;
      const ch = r.height / term.rows;
      return { x: r.left + cw * (word.length / 2), y: r.top + ch * (row - b.viewportY + 0.5), row };
    },
    { sel: termSelector(), word },
  );
}

e2e('terminal: paste with Ctrl+Shift+V and Ctrl+V, copy a selection with Ctrl+Shift+C', { timeout: 120_000 }, async (t) => {
  const { page, context } = t;
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  await openTerminal(t);

  for (const keys of ['Control+Shift+V', 'Control+V']) {
    const text = token('pasted');
    await page.evaluate((s) => navigator.clipboard.writeText(s), text);
    await typeInTerm(page, 'echo ', { enter: false });
    await page.keyboard.press(keys);
    // The pasted text reaches the shell's line editor (then Enter runs it).
    await waitForTerm(page, new RegExp(`# echo ${text}$`, 'm'), { timeout: 10_000 });
    await page.keyboard.press('Enter');
    await waitForTerm(page, new RegExp(`^${text}$`, 'm'));
    // Pasted once, not twice (the browser's paste event and the clipboard fallback).
    const lines = await waitForTerm(page, new RegExp(`echo ${text}.*$`, 'm'));
    assert.doesNotMatch(lines[0], new RegExp(`${text}${text}`), `${keys} pasted once`);
  }

  // Select a word of output with a double click and copy it.
  const word = token('copied');
  await typeInTerm(page, `echo ${word}`);
  await waitForTerm(page, new RegExp(`^${word}$`, 'm'));
  const at = await wordOnScreen(page, word);
  assert.ok(at.row >= 0, 'the word is in the buffer');
  await page.mouse.dblclick(at.x, at.y);
  await page.waitForFunction((sel) => document.querySelector(sel).sandlabTerm.getSelection().length > 0, termSelector());
  const selected = await page.evaluate((sel) => document.querySelector(sel).sandlabTerm.getSelection(), termSelector());
  assert.equal(selected, word, 'a double click selects the word');
  await page.keyboard.press('Control+Shift+C');
  await waitUntil(async () => (await clipboard(page)) === word, { timeout: 5_000, message: 'the selection on the clipboard' });

  // Ctrl+C with a selection copies too, and does not interrupt the shell.
  const second = token('ctrlc');
  await typeInTerm(page, `echo ${second}`);
  await waitForTerm(page, new RegExp(`^${second}$`, 'm'));
  await typeInTerm(page, 'echo still-', { enter: false });
  const at2 = await wordOnScreen(page, second);
  assert.ok(at2.row >= 0, 'the second word is in the buffer');
  await page.mouse.dblclick(at2.x, at2.y);
  await page.keyboard.press('Control+C');
  await waitUntil(async () => (await clipboard(page)) === second, { timeout: 5_000, message: 'Ctrl+C to copy the selection' });
  await page.keyboard.type('there-$((3+4))');
  await page.keyboard.press('Enter');
  // The half-typed line survived Ctrl+C: no ^C went to the shell.
  await waitForTerm(page, /^still-there-7$/m);

  // Tab belongs to the shell (completion); Esc then Tab moves the focus out of the terminal.
  const inTerm = () => page.evaluate((sel) => document.querySelector(sel).contains(document.activeElement), termSelector());
  await typeInTerm(page, 'echo tab-$((1+1)) | hea', { enter: false });
  await page.keyboard.press('Tab');
  assert.ok(await inTerm(), 'Tab stays in the terminal');
  await page.keyboard.press('Enter');
  await waitForTerm(page, /^tab-2$/m);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Tab');
  assert.ok(!(await inTerm()), 'Esc then Tab leaves the terminal');
});

e2e('terminal: the shell follows the window size', { timeout: 120_000 }, async (t) => {
  const { page } = t;
  await openTerminal(t);
  let n = 0;
  /** `stty size` in the shell once it equals the terminal's own size; returns the columns. */
  const settledColumns = async () => {
    let last = null;
    await waitUntil(
      async () => {
        n++;
        const want = await page.evaluate((sel) => {
          const term = document.querySelector(sel).sandlabTerm;
          return { rows: term.rows, cols: term.cols };
        }, termSelector());
        await typeInTerm(page, `echo size-${n}=$(stty size)`);
        const [, rows, cols] = await waitForTerm(page, new RegExp(`^size-${n}=(\\d+) (\\d+)$`, 'm'));
        last = { rows: +rows, cols: +cols, want };
        return last.rows === want.rows && last.cols === want.cols;
      },
      { timeout: 20_000, interval: 300, message: 'stty size to match the terminal' },
    ).catch((e) => {
      throw new Error(`${e.message}; last ${JSON.stringify(last)}`);
    });
    return last.cols;
  };

  // Whatever the layout does at each width, the shell's size follows the terminal's.
  const seen = [await settledColumns()];
  for (const viewport of [
    { width: 1800, height: 1000 },
    { width: 1000, height: 700 },
    { width: 1400, height: 900 },
  ]) {
    const before = seen[seen.length - 1];
    await page.setViewportSize(viewport);
    await page.waitForFunction(({ sel, before }) => document.querySelector(sel).sandlabTerm.cols !== before, { sel: termSelector(), before });
    seen.push(await settledColumns());
    await t.shot(`${viewport.width}px`);
  }
  t.t.diagnostic(`columns: ${seen.join(' → ')}`);
});

e2e('terminal: reconnects by itself after a dropped connection and shows the scrollback', { timeout: 120_000 }, async (t) => {
  const { page } = t;
  await openTerminal(t);
  const mark = token('before');
  const keep = token('keep');
  await typeInTerm(page, `X=${keep}; echo ${mark}`);
  await waitForTerm(page, new RegExp(`^${mark}$`, 'm'));

  // Record every status the terminal goes through.
  await page.evaluate((sel) => {
    const el = document.querySelector(sel);
    window.__statuses = [];
    new MutationObserver(() => window.__statuses.push(el.dataset.status)).observe(el, { attributes: true, attributeFilter: ['data-status'] });
  }, termSelector());

  const dropped = dropBrowserConnections();
  assert.ok(dropped > 0, 'the browser had connections to drop');
  await page.waitForFunction(
    (sel) => window.__statuses.includes('reconnecting') && document.querySelector(sel).dataset.status === 'open',
    termSelector(),
    { timeout: 30_000 },
  );
  // The screen was reset and the scrollback replayed: the earlier output is there once.
  await waitForTerm(page, new RegExp(`^${mark}$`, 'm'));
  const count = await page.evaluate(
    ({ sel, mark }) => {
      const b = document.querySelector(sel).sandlabTerm.buffer.active;
      let c = 0;
      for (let i = 0; i < b.length; i++) if (b.getLine(i)?.translateToString(true) === mark) c++;
      return c;
    },
    { sel: termSelector(), mark },
  );
  assert.equal(count, 1, 'the scrollback is shown once (reset before the replay)');
  // The same shell, and it takes input again.
  await typeInTerm(page, 'echo "$X-again"');
  await waitForTerm(page, new RegExp(`^${keep}-again$`, 'm'));
  await t.shot('reconnected');
});

e2e('terminal: a long burst of output keeps the page responsive and ends complete', { timeout: 180_000 }, async (t) => {
  const { page } = t;
  await openTerminal(t);
  await typeInTerm(page, 'seq 1 300000; echo burst-$((2*3))-done');
  // While the output streams, the page still answers (a generous bound: no tight timings).
  let roundTrips = 0;
  let slowest = 0;
  let done = false;
  const finished = waitForTerm(page, /^burst-6-done$/m, { timeout: 150_000 }).finally(() => (done = true));
  while (!done) {
    const t0 = Date.now();
    await within(20_000, page.evaluate(() => document.querySelectorAll('*').length), 'a page round trip during the burst');
    slowest = Math.max(slowest, Date.now() - t0);
    roundTrips++;
    await new Promise((r) => setTimeout(r, 200));
  }
  await finished;
  assert.ok(roundTrips >= 1, 'the page answered during the burst');
  // The end of the output is there, in order, with nothing lost or garbled in between.
  await waitForTerm(page, /^299999\n300000\nburst-6-done$/m, { timeout: 5_000 });
  const text = await termText(page);
  const numbers = text.split('\n').filter((l) => /^\d+$/.test(l));
  assert.ok(numbers.length >= 1000, `the scrollback keeps the last lines (${numbers.length})`);
  const last = numbers.slice(-1000).map(Number);
  last.forEach((v, i) => assert.equal(v, 300000 - 999 + i, `line ${i} of the last 1000`));
  // And the terminal still takes input.
  await typeInTerm(page, 'echo after-$((40+2))');
  await waitForTerm(page, /^after-42$/m);
  t.t.diagnostic(`${roundTrips} page round trips during the burst, slowest ${slowest} ms`);
});

e2e('terminal: a second tab takes the terminal over and back; an exited shell can be started again', { timeout: 120_000 }, async (t) => {
  const { page, context } = t;
  const sb = await openTerminal(t);
  const mark = token('first');
  await typeInTerm(page, `echo ${mark}`);
  await waitForTerm(page, new RegExp(`^${mark}$`, 'm'));

  // The same terminal opened in another tab: the first one says so and does not fight back.
  const second = await context.newPage();
  try {
    await second.goto(`/playground/${sb.id}`);
    await second.locator('[data-testid="terminal"][data-status="open"]').waitFor({ timeout: 30_000 });
    await waitForTerm(second, new RegExp(`^${mark}$`, 'm'));
    const displaced = page.locator('[data-testid="terminal"][data-status="displaced"]');
    await displaced.waitFor({ timeout: 15_000 });
    await t.shot('displaced');
    // Take it back in the first tab.
    await displaced.locator('button').first().click();
    await page.locator('[data-testid="terminal"][data-status="open"]').waitFor({ timeout: 15_000 });
    await second.locator('[data-testid="terminal"][data-status="displaced"]').waitFor({ timeout: 15_000 });
  } finally {
    await second.close();
  }
  await waitForTerm(page, new RegExp(`^${mark}$`, 'm'));

  // `exit` ends the shell: the terminal says it is closed and offers a new shell.
  await typeInTerm(page, 'exit');
  const closed = page.locator('[data-testid="terminal"][data-status="closed"]');
  await closed.waitFor({ timeout: 15_000 });
  await t.shot('closed');
  await closed.locator('button').first().click();
  await waitForPrompt(page, { timeout: 30_000 });
  await typeInTerm(page, 'echo new-shell-$((5*5))');
  await waitForTerm(page, /^new-shell-25$/m);
});
