// Reading the server's Prometheus text (`/metrics`) in the browser: a parser for the text
// exposition format, lookups by name and labels, histogram buckets summed over label sets,
// the difference of two polls, quantiles estimated from buckets the way Prometheus's
// `histogram_quantile` does, and a bounded history of points for the admin charts.
// No DOM here, so the unit tests run under plain Node.

export type Labels = Record<string, string>;

export interface Sample {
  /** The sample's name, e.g. `sandlab_sandbox_create_seconds_bucket`. */
  name: string;
  labels: Labels;
  value: number;
}

/** One cumulative histogram bucket: observations less than or equal to `le`. */
export interface Bucket {
  le: number;
  count: number;
}

function parseNumber(s: string): number {
  switch (s) {
    case '+Inf':
    case 'Inf':
    case '+inf':
    case 'inf':
      return Infinity;
    case '-Inf':
    case '-inf':
      return -Infinity;
    case 'NaN':
    case 'nan':
      return NaN;
  }
  // Number('') is 0; an empty value is malformed.
  if (s.trim() === '') return NaN;
  return Number(s);
}

/** Parses `{a="x",b="y\"z"}` starting at `text[i] === '{'`; returns the labels and the index after `}`. */
function parseLabels(text: string, i: number): [Labels, number] | null {
  const labels: Labels = {};
  i++; // '{'
  for (;;) {
    while (text[i] === ' ' || text[i] === '\t' || text[i] === ',') i++;
    if (text[i] === '}') return [labels, i + 1];
    const nameStart = i;
    while (i < text.length && /[A-Za-z0-9_]/.test(text[i])) i++;
    const name = text.slice(nameStart, i);
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (!name || text[i] !== '=') return null;
    i++;
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (text[i] !== '"') return null;
    i++;
    let value = '';
    for (;;) {
      if (i >= text.length) return null;
      const c = text[i];
      if (c === '"') {
        i++;
        break;
      }
      if (c === '\\') {
        const n = text[i + 1];
        value += n === 'n' ? '\n' : n === '\\' ? '\\' : n === '"' ? '"' : '\\' + (n ?? '');
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[name] = value;
  }
}

/**
 * Parses Prometheus text exposition format (version 0.0.4). Comment lines (`# HELP`,
 * `# TYPE`, others) and malformed lines are skipped; an optional timestamp after the value
 * is ignored.
 */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let i = 0;
    while (i < line.length && /[A-Za-z0-9_:]/.test(line[i])) i++;
    const name = line.slice(0, i);
    if (!name || /^[0-9]/.test(name)) continue;
    let labels: Labels = {};
    if (line[i] === '{') {
      const parsed = parseLabels(line, i);
      if (!parsed) continue;
      [labels, i] = parsed;
    }
    const rest = line.slice(i).trim().split(/\s+/);
    if (rest.length < 1 || rest[0] === '') continue;
    const value = parseNumber(rest[0]);
    if (Number.isNaN(value) && rest[0] !== 'NaN' && rest[0] !== 'nan') continue;
    out.push({ name, labels, value });
  }
  return out;
}

/** Whether `labels` has every pair of `want`. */
export function labelsMatch(labels: Labels, want: Labels = {}): boolean {
  return Object.entries(want).every(([k, v]) => labels[k] === v);
}

/** The samples named `name` whose labels include `want`. */
export function select(samples: Sample[], name: string, want?: Labels): Sample[] {
  return samples.filter((s) => s.name === name && labelsMatch(s.labels, want));
}

/** Whether any sample of the metric `name` exists (a histogram's `_bucket`, `_count` and `_sum` count too). */
export function hasMetric(samples: Sample[], name: string): boolean {
  return samples.some(
    (s) => s.name === name || s.name === name + '_bucket' || s.name === name + '_count' || s.name === name + '_sum',
  );
}

/** The sum of the samples named `name` whose labels include `want`; null when there are none. */
export function sumOf(samples: Sample[], name: string, want?: Labels): number | null {
  const found = select(samples, name, want);
  if (found.length === 0) return null;
  return found.reduce((n, s) => n + s.value, 0);
}

/**
 * The cumulative buckets of histogram `name` (without `_bucket`), summed over every label
 * set that includes `want` (so `source="pool"` and `source="cold"` add up), sorted by `le`.
 * Empty when the histogram does not exist.
 */
export function histogramBuckets(samples: Sample[], name: string, want?: Labels): Bucket[] {
  const byLe = new Map<number, number>();
  for (const s of select(samples, name + '_bucket', want)) {
    const le = parseNumber(s.labels.le ?? '');
    if (Number.isNaN(le)) continue;
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count }));
}

/**
 * The observations between two polls: `cur - prev` per bucket. A bucket missing from `prev`
 * counts as 0 there (the series appeared in between). When any count went down, the server
 * restarted (counters reset), and `cur` itself is the best estimate of what happened since.
 */
export function bucketDelta(cur: Bucket[], prev: Bucket[]): Bucket[] {
  const before = new Map(prev.map((b) => [b.le, b.count]));
  const reset = cur.some((b) => b.count < (before.get(b.le) ?? 0)) || prev.some((b) => !cur.some((c) => c.le === b.le));
  if (reset) return cur.map((b) => ({ ...b }));
  return cur.map((b) => ({ le: b.le, count: b.count - (before.get(b.le) ?? 0) }));
}

/** How many observations the buckets hold (the `+Inf` bucket, else the largest). */
export function bucketTotal(buckets: Bucket[]): number {
  return buckets.length === 0 ? 0 : buckets[buckets.length - 1].count;
}

/**
 * The `q`-quantile (0..1) estimated from cumulative buckets, as Prometheus's
 * `histogram_quantile` does: find the bucket holding the rank and interpolate linearly
 * inside it (the lowest bucket starts at 0). A rank falling in the `+Inf` bucket answers the
 * largest finite bound. Null when there are no observations or no `+Inf` bucket.
 */
export function histogramQuantile(q: number, buckets: Bucket[]): number | null {
  if (buckets.length < 2 || Number.isNaN(q)) return null;
  if (buckets[buckets.length - 1].le !== Infinity) return null;
  // Cumulative counts must not go down; repair small inconsistencies like Prometheus does.
  const b = buckets.map((x) => ({ ...x }));
  for (let i = 1; i < b.length; i++) if (b[i].count < b[i - 1].count) b[i].count = b[i - 1].count;
  const total = b[b.length - 1].count;
  if (total <= 0) return null;
  if (q <= 0) return q < 0 ? -Infinity : b[0].le > 0 ? 0 : b[0].le;
  if (q >= 1) return b[b.length - 2].le;
  const rank = q * total;
  let i = 0;
  while (i < b.length - 1 && b[i].count < rank) i++;
  if (i === b.length - 1) return b[b.length - 2].le;
  if (i === 0 && b[0].le <= 0) return b[0].le;
  const end = b[i].le;
  const start = i === 0 ? 0 : b[i - 1].le;
  const below = i === 0 ? 0 : b[i - 1].count;
  const inBucket = b[i].count - below;
  if (inBucket <= 0) return end;
  return start + (end - start) * ((rank - below) / inBucket);
}

/** One point of a chart series: a time (Unix ms) and a value, or null for a gap. */
export interface Point {
  t: number;
  v: number | null;
}

/** `points` with `p` appended, keeping at most the last `max`. */
export function pushPoint(points: Point[], p: Point, max = 60): Point[] {
  const next = points.concat(p);
  return next.length > max ? next.slice(next.length - max) : next;
}

/** What one poll of `/metrics` contributes to the admin charts. */
export interface PollValues {
  /** Create latency quantiles over the interval since the previous poll (seconds). */
  createP50: number | null;
  createP99: number | null;
  /** Sandboxes created in the interval. */
  creates: number;
  /** Create latency quantiles and count since the server started (one poll suffices). */
  totalP50: number | null;
  totalP99: number | null;
  totalCreates: number;
  /** Warm-pool claim median over the interval (seconds); null also when the metric is absent. */
  claimP50: number | null;
  live: number | null;
  terminals: number | null;
  /** Whether the server exports `sandlab_pool_claim_seconds` at all. */
  hasPoolClaim: boolean;
}

export const CREATE_SECONDS = 'sandlab_sandbox_create_seconds';
export const POOL_CLAIM_SECONDS = 'sandlab_pool_claim_seconds';
export const SANDBOXES_LIVE = 'sandlab_sandboxes_live';
export const TERMINALS_OPEN = 'sandlab_terminals_open';

/**
 * The chart values for the poll `cur` given the previous poll `prev` (null on the first
 * poll: quantiles need two polls and are then null).
 */
export function pollValues(cur: Sample[], prev: Sample[] | null): PollValues {
  const interval = (name: string): Bucket[] | null => {
    if (!prev) return null;
    return bucketDelta(histogramBuckets(cur, name), histogramBuckets(prev, name));
  };
  const create = interval(CREATE_SECONDS);
  const claim = interval(POOL_CLAIM_SECONDS);
  const total = histogramBuckets(cur, CREATE_SECONDS);
  return {
    totalP50: histogramQuantile(0.5, total),
    totalP99: histogramQuantile(0.99, total),
    totalCreates: bucketTotal(total),
    createP50: create ? histogramQuantile(0.5, create) : null,
    createP99: create ? histogramQuantile(0.99, create) : null,
    creates: create ? bucketTotal(create) : 0,
    claimP50: claim ? histogramQuantile(0.5, claim) : null,
    live: sumOf(cur, SANDBOXES_LIVE),
    terminals: sumOf(cur, TERMINALS_OPEN),
    hasPoolClaim: hasMetric(cur, POOL_CLAIM_SECONDS),
  };
}

/** A latency in seconds as text: "850 µs", "12 ms", "1.4 s". */
export function formatSeconds(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '—';
  if (s < 0.001) return `${Math.round(s * 1e6)} µs`;
  if (s < 1) {
    const ms = s * 1000;
    return `${ms < 10 ? ms.toFixed(1).replace(/\.0$/, '') : Math.round(ms)} ms`;
  }
  return `${s < 10 ? s.toFixed(2).replace(/\.?0+$/, '') : s.toFixed(1).replace(/\.0$/, '')} s`;
}
