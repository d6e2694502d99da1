// Pieces shared by the browser benchmarks: a Server-Sent Events reader in Node (the
// baseline each benchmark compares the page with) and the summary statistics.
import { BASE } from '../e2e/helpers.mjs';

/**
 * Reads a session's event stream, calling `onEvent(name, data)` for each event until it
 * returns true or `signal` aborts. The login's cookies come from `api` (helpers' Api).
 */
export async function readEvents(api, session, onEvent, signal) {
  const resp = await fetch(`${BASE}/api/v1/sessions/${session}/events`, {
    headers: { cookie: api.cookies, accept: 'text/event-stream' },
    signal,
  });
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of resp.body) {
    buf += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const name = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (name && data && onEvent(name, JSON.parse(data))) return true;
    }
  }
  return false;
}

export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}

export const secs = (ms) => `${(ms / 1000).toFixed(3)} s`;
