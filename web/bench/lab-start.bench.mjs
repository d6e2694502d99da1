// Benchmark: from "Start lab" to a shell prompt in the browser's terminal, against the
// same start through the API alone (POST the session, then its event stream says
// `ready`), side by side on the same single-node lab (scripts/bench-ui.sh makes it; no
// init tasks). The difference is what the page adds: navigation, the lab's data, the
// terminal's WebSocket and the shell's first prompt.
import { writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';

import { Api, assert, e2e, OUT, signInContext, waitUntil } from '../e2e/helpers.mjs';
import { quantile, readEvents, secs } from './common.mjs';

const RUNS = Number(process.env.BENCH_STARTS ?? 5);
const LAB = process.env.BENCH_LAB ?? 'bench-task-latency';

/** Resolves when the session's event stream reports `ready` (or rejects on `failed`). */
async function readyOverSse(api, session) {
  const abort = new AbortController();
  try {
    const ready = await readEvents(
      api,
      session,
      (name, d) => {
        if (name !== 'session' || d.state === 'starting') return false;
        if (d.state === 'ready') return true;
        throw new Error(`the session turned ${d.state}`);
      },
      abort.signal,
    );
    if (!ready) throw new Error('the event stream ended before the session was ready');
  } finally {
    abort.abort();
  }
}

e2e('from Start lab to a shell prompt in the page, against the API alone', { timeout: 60_000 + RUNS * 30_000 }, async ({ page, context, cleanup }) => {
  const api = await Api.login('learner');
  await signInContext(context, 'learner');
  const ids = [];
  cleanup(async () => {
    for (const id of ids) await api.endSession(id);
  });
  const apiTimes = [];
  const pageTimes = [];
  for (let i = 0; i < RUNS; i++) {
    // The API alone: the session answered 201 with its sandbox running, then `ready`.
    let start = Date.now();
    const s = await api.startSession(LAB);
    ids.push(s.id);
    await readyOverSse(api, s.id);
    apiTimes.push(Date.now() - start);
    await api.endSession(s.id);

    // The page: click Start on the lab page, wait for the prompt in the terminal.
    await page.goto(`/labs/${LAB}`);
    const button = page.getByTestId('start-lab');
    await button.waitFor();
    start = Date.now();
    await button.click();
    await page.waitForFunction(
      () => {
        const t = document.querySelector('[data-testid="terminal"]')?.sandlabTerm;
        if (!t) return false;
        const b = t.buffer.active;
        for (let y = 0; y < b.length; y++) if (/[#$] ?$/.test(b.getLine(y)?.translateToString(true) ?? '')) return true;
        return false;
      },
      null,
      { timeout: 30_000, polling: 'raf' },
    );
    pageTimes.push(Date.now() - start);
    const id = new URL(page.url()).pathname.split('/').pop();
    ids.push(id);
    await api.endSession(id);
    await waitUntil(async () => (await api.call('GET', `/sessions/${id}`)).status === 404, { message: 'the session to be gone' });
  }
  const line = (name, xs) =>
    `${name.padEnd(34)} ${secs(quantile(xs, 0.5)).padStart(9)} ${secs(Math.max(...xs)).padStart(9)}`;
  const report = [
    `lab start: ${RUNS} starts of a one-machine lab each way`,
    `${''.padEnd(34)} ${'p50'.padStart(9)} ${'max'.padStart(9)}`,
    line('API: POST session → ready (SSE)', apiTimes),
    line('page: click Start → shell prompt', pageTimes),
    `page / API at p50: ${(quantile(pageTimes, 0.5) / quantile(apiTimes, 0.5)).toFixed(2)}x`,
  ].join('\n');
  console.log(report);
  writeFileSync(join(OUT, 'bench-lab-start.txt'), report + '\n');
  appendFileSync(join(OUT, 'bench.txt'), report + '\n\n');
  assert.equal(pageTimes.length, RUNS);
});
