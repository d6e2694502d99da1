// Unit tests of the Prometheus text parser and the histogram helpers (`npm run test:unit`).
// The project's tsconfig leaves Node's types out (they would leak into the browser code),
// so Node's test modules are imported untyped and given the few types used here.
// @ts-ignore -- no Node types in this project
import nodeAssert from 'node:assert/strict';
// @ts-ignore -- no Node types in this project
import { test as nodeTest } from 'node:test';

import {
  bucketDelta,
  bucketTotal,
  formatSeconds,
  hasMetric,
  histogramBuckets,
  histogramQuantile,
  parsePrometheus,
  pollValues,
  pushPoint,
  select,
  sumOf,
  type Bucket,
} from './metrics';

const assert = nodeAssert as {
  equal(actual: unknown, expected: unknown, message?: string): void;
  deepEqual(actual: unknown, expected: unknown, message?: string): void;
  ok(value: unknown, message?: string): void;
};
const test = nodeTest as (name: string, fn: () => void | Promise<void>) => void;

const LE = ['0.0001', '0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '+Inf'];

/** A histogram in the exporter's layout; `counts` are cumulative per bucket of LE. */
function histogram(name: string, labels: string, counts: number[], sum = 0): string {
  const sep = labels ? labels + ',' : '';
  const lines = LE.map((le, i) => `${name}_bucket{${sep}le="${le}"} ${counts[i]}`);
  lines.push(`${name}_sum${labels ? `{${labels}}` : ''} ${sum}`);
  lines.push(`${name}_count${labels ? `{${labels}}` : ''} ${counts[counts.length - 1]}`);
  return lines.join('\n');
}

/** Cumulative counts with `n` observations landing in bucket index `i` (and above). */
function at(i: number, n: number, base: number[] = LE.map(() => 0)): number[] {
  return base.map((c, j) => (j >= i ? c + n : c));
}

const SAMPLE = `# HELP sandlab_http_requests_total HTTP requests answered
# TYPE sandlab_http_requests_total counter
sandlab_http_requests_total{method="GET",status="200"} 42
sandlab_http_requests_total{method="POST",status="201"} 3
# TYPE sandlab_sandboxes_live gauge
sandlab_sandboxes_live 4
sandlab_terminals_open 2 1700000000000
weird_label{path="C:\\\\dir",q="say \\"hi\\"",nl="a\\nb"} 1.5e3
not a sample line
nan_metric NaN
inf_metric +Inf
`;

test('parses names, labels, values and skips comments', () => {
  const s = parsePrometheus(SAMPLE);
  assert.equal(sumOf(s, 'sandlab_http_requests_total'), 45);
  assert.equal(sumOf(s, 'sandlab_http_requests_total', { method: 'POST' }), 3);
  assert.equal(sumOf(s, 'sandlab_sandboxes_live'), 4);
  assert.equal(sumOf(s, 'sandlab_terminals_open'), 2, 'a trailing timestamp is ignored');
  assert.equal(sumOf(s, 'missing'), null);
  const [w] = select(s, 'weird_label');
  assert.deepEqual(w.labels, { path: 'C:\\dir', q: 'say "hi"', nl: 'a\nb' });
  assert.equal(w.value, 1500);
  assert.ok(Number.isNaN(select(s, 'nan_metric')[0].value));
  assert.equal(select(s, 'inf_metric')[0].value, Infinity);
  assert.equal(select(s, 'not').length, 0, 'malformed lines are skipped');
});

test('parses an empty body and Windows line ends', () => {
  assert.deepEqual(parsePrometheus(''), []);
  const s = parsePrometheus('a 1\r\nb{x="y"} 2\r\n');
  assert.deepEqual(s, [
    { name: 'a', labels: {}, value: 1 },
    { name: 'b', labels: { x: 'y' }, value: 2 },
  ]);
});

test('histogram buckets add up over label sets and sort by le', () => {
  const text = [
    histogram('sandlab_sandbox_create_seconds', 'source="pool"', at(2, 3)),
    histogram('sandlab_sandbox_create_seconds', 'source="cold"', at(12, 2)),
  ].join('\n');
  const s = parsePrometheus(text);
  const all = histogramBuckets(s, 'sandlab_sandbox_create_seconds');
  assert.equal(all.length, LE.length);
  assert.equal(all[0].le, 0.0001);
  assert.equal(all[all.length - 1].le, Infinity);
  assert.equal(bucketTotal(all), 5);
  const pool = histogramBuckets(s, 'sandlab_sandbox_create_seconds', { source: 'pool' });
  assert.equal(bucketTotal(pool), 3);
  assert.ok(hasMetric(s, 'sandlab_sandbox_create_seconds'));
  assert.ok(!hasMetric(s, 'sandlab_pool_claim_seconds'));
  assert.deepEqual(histogramBuckets(s, 'sandlab_pool_claim_seconds'), []);
});

test('quantiles interpolate inside the bucket like histogram_quantile', () => {
  // 10 observations in (0.5, 1]: the median is halfway through that bucket.
  const b: Bucket[] = [
    { le: 0.5, count: 0 },
    { le: 1, count: 10 },
    { le: Infinity, count: 10 },
  ];
  assert.equal(histogramQuantile(0.5, b), 0.75);
  assert.equal(histogramQuantile(0.99, b), 0.5 + 0.5 * 0.99);
  // The lowest bucket starts at 0.
  assert.equal(histogramQuantile(0.5, [{ le: 2, count: 4 }, { le: Infinity, count: 4 }]), 1);
  // A rank in the +Inf bucket answers the largest finite bound.
  assert.equal(histogramQuantile(0.99, [{ le: 1, count: 1 }, { le: Infinity, count: 10 }]), 1);
  // No observations, or no +Inf bucket: no answer.
  assert.equal(histogramQuantile(0.5, [{ le: 1, count: 0 }, { le: Infinity, count: 0 }]), null);
  assert.equal(histogramQuantile(0.5, [{ le: 1, count: 3 }, { le: 2, count: 3 }]), null);
  assert.equal(histogramQuantile(0.5, []), null);
});

test('quantiles of a split population', () => {
  // 90 fast (≤ 1 ms), 10 slow in (1, 2.5] s: p50 is fast, p99 is slow.
  const b: Bucket[] = LE.map((le) => ({ le: le === '+Inf' ? Infinity : Number(le), count: 0 }));
  for (const x of b) {
    if (x.le >= 0.001) x.count += 90;
    if (x.le >= 2.5) x.count += 10;
  }
  const p50 = histogramQuantile(0.5, b)!;
  assert.ok(p50 > 0.0005 && p50 <= 0.001, `p50 ${p50}`);
  const p99 = histogramQuantile(0.99, b)!;
  assert.ok(p99 > 1 && p99 <= 2.5, `p99 ${p99}`);
  assert.equal(p99, 1 + 1.5 * ((99 - 90) / 10));
});

test('deltas between polls give the interval, and survive a restart', () => {
  const prev: Bucket[] = [
    { le: 1, count: 5 },
    { le: Infinity, count: 7 },
  ];
  const cur: Bucket[] = [
    { le: 1, count: 8 },
    { le: Infinity, count: 12 },
  ];
  assert.deepEqual(bucketDelta(cur, prev), [
    { le: 1, count: 3 },
    { le: Infinity, count: 5 },
  ]);
  // A series that appeared between polls: everything in it is new.
  assert.deepEqual(bucketDelta(cur, []), cur);
  // Counts went down: the server restarted; the current counts are the interval.
  const restarted: Bucket[] = [
    { le: 1, count: 1 },
    { le: Infinity, count: 2 },
  ];
  assert.deepEqual(bucketDelta(restarted, prev), restarted);
  // Nothing happened: every delta is 0 and there is no quantile.
  const idle = bucketDelta(cur, cur);
  assert.equal(bucketTotal(idle), 0);
  assert.equal(histogramQuantile(0.5, idle), null);
});

test('pollValues: first poll has no quantiles, later polls use the deltas of both sources', () => {
  const gauges = 'sandlab_sandboxes_live 3\nsandlab_terminals_open 1\n';
  const p0 = parsePrometheus(
    gauges +
      histogram('sandlab_sandbox_create_seconds', 'source="pool"', at(2, 100)) +
      '\n' +
      histogram('sandlab_sandbox_create_seconds', 'source="cold"', at(12, 50)),
  );
  const first = pollValues(p0, null);
  assert.equal(first.createP50, null);
  assert.equal(first.creates, 0);
  // Since the server started: 100 pool creates at <= 1 ms and 50 cold ones, at once.
  assert.equal(first.totalCreates, 150);
  assert.ok(first.totalP50! <= 0.001, `total p50 ${first.totalP50}`);
  assert.ok(first.totalP99! > 0.001, `total p99 ${first.totalP99}`);
  assert.equal(first.live, 3);
  assert.equal(first.terminals, 1);
  assert.equal(first.hasPoolClaim, false);
  assert.equal(first.claimP50, null);

  // Between the polls: 1 pool create in (0.0005, 0.001] and 3 cold ones in (1, 2.5].
  const p1 = parsePrometheus(
    'sandlab_sandboxes_live 7\n' +
      histogram('sandlab_sandbox_create_seconds', 'source="pool"', at(2, 1, at(2, 100))) +
      '\n' +
      histogram('sandlab_sandbox_create_seconds', 'source="cold"', at(12, 3, at(12, 50))) +
      '\n' +
      histogram('sandlab_pool_claim_seconds', 'profile="debian"', at(1, 4)),
  );
  const v = pollValues(p1, p0);
  assert.equal(v.creates, 4);
  // The history before the interval (100 fast creates) must not drag the median down.
  assert.ok(v.createP50! > 1 && v.createP50! <= 2.5, `p50 ${v.createP50}`);
  assert.ok(v.createP99! > 1 && v.createP99! <= 2.5, `p99 ${v.createP99}`);
  assert.equal(v.live, 7);
  assert.equal(v.terminals, null);
  assert.equal(v.hasPoolClaim, true);
  assert.ok(v.claimP50! > 0.0001 && v.claimP50! <= 0.0005, `claim ${v.claimP50}`);
});

test('pushPoint keeps the last points only', () => {
  let pts: { t: number; v: number | null }[] = [];
  for (let i = 0; i < 70; i++) pts = pushPoint(pts, { t: i, v: i }, 60);
  assert.equal(pts.length, 60);
  assert.equal(pts[0].t, 10);
  assert.equal(pts[59].t, 69);
});

test('formatSeconds', () => {
  assert.equal(formatSeconds(null), '—');
  assert.equal(formatSeconds(0.00025), '250 µs');
  assert.equal(formatSeconds(0.0042), '4.2 ms');
  assert.equal(formatSeconds(0.25), '250 ms');
  assert.equal(formatSeconds(1.5), '1.5 s');
  assert.equal(formatSeconds(2), '2 s');
  assert.equal(formatSeconds(12.34), '12.3 s');
});
