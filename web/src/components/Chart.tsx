// A small time-series line chart drawn as inline SVG (no chart library): a time axis, a
// linear or logarithmic value axis with labels, one line per series (gaps where a value is
// missing, a dot on every point so lone points show), a legend that states the latest
// values as text, and a visually hidden table of recent points for screen readers.
// Colours are CSS variables, so both themes work.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';

import type { Point } from '../lib/metrics';
import './Chart.css';

export interface ChartSeries {
  label: string;
  /** A CSS colour, normally a theme variable such as `var(--accent)`. */
  color: string;
  points: Point[];
  dashed?: boolean;
}

export interface ChartProps {
  testid?: string;
  title: string;
  /** What the values are, e.g. "Latency" (the y axis title). */
  yLabel: string;
  series: ChartSeries[];
  format: (v: number) => string;
  scale?: 'linear' | 'log';
  /** Whole numbers only on a linear axis (counts). */
  integer?: boolean;
  height?: number;
  /** Shown over the plot while no series has a value yet. */
  emptyText?: string;
}

const PAD = { top: 12, right: 14, bottom: 28, left: 64 };

function timeLabel(t: number): string {
  const d = new Date(t);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** About `n` round tick values covering 0..max. */
function linearTicks(max: number, n: number, integer: boolean): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step0 = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const step = integer ? Math.max(1, Math.ceil(step0)) : step0;
  const top = Math.ceil(max / step) * step;
  const out: number[] = [];
  for (let v = 0; v <= top + step / 2; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function logTicks(min: number, max: number): number[] {
  let lo = Math.floor(Math.log10(min));
  let hi = Math.ceil(Math.log10(max));
  if (hi === lo) hi = lo + 1;
  if (hi - lo < 2) lo = hi - 2;
  const out: number[] = [];
  for (let e = lo; e <= hi; e++) out.push(Math.pow(10, e));
  return out;
}

export function Chart(props: ChartProps) {
  const height = props.height ?? 220;
  const box = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(0);

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    setWidth(el.clientWidth);
  }, []);
  useEffect(() => {
    const el = box.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const log = props.scale === 'log';
  const values = props.series.flatMap((s) => s.points.map((p) => p.v)).filter((v): v is number => v !== null && Number.isFinite(v) && (!log || v > 0));
  const times = props.series.flatMap((s) => s.points.map((p) => p.t));
  const hasData = values.length > 0;

  let t0 = times.length ? Math.min(...times) : Date.now() - 60_000;
  let t1 = times.length ? Math.max(...times) : Date.now();
  if (t1 - t0 < 60_000) t0 = t1 - 60_000;
  if (t1 <= t0) t1 = t0 + 1;

  const ticks = log
    ? logTicks(hasData ? Math.min(...values) : 0.001, hasData ? Math.max(...values) : 1)
    : linearTicks(hasData ? Math.max(...values) : props.integer ? 4 : 1, 4, !!props.integer);
  const yMin = ticks[0];
  const yMax = ticks[ticks.length - 1];

  const plotW = Math.max(10, width - PAD.left - PAD.right);
  const plotH = height - PAD.top - PAD.bottom;
  const x = (t: number) => PAD.left + ((t - t0) / (t1 - t0)) * plotW;
  const y = (v: number) => {
    const f = log ? (Math.log10(v) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin)) : (v - yMin) / (yMax - yMin || 1);
    return PAD.top + plotH - Math.min(1, Math.max(0, f)) * plotH;
  };
  const usable = (v: number | null): v is number => v !== null && Number.isFinite(v) && (!log || v > 0);

  const path = (pts: Point[]) => {
    let d = '';
    let pen = false;
    for (const p of pts) {
      if (!usable(p.v)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`;
      pen = true;
    }
    return d;
  };

  const xTickCount = Math.max(2, Math.min(6, Math.floor(plotW / 110)));
  const xTicks = Array.from({ length: xTickCount }, (_, i) => t0 + ((t1 - t0) * i) / (xTickCount - 1));

  const latest = (s: ChartSeries) => {
    for (let i = s.points.length - 1; i >= 0; i--) if (usable(s.points[i].v)) return s.points[i];
    return null;
  };
  const summary =
    `${props.title}: ` +
    (hasData
      ? props.series
          .map((s) => {
            const l = latest(s);
            return `${s.label} ${l ? `${props.format(l.v!)} at ${timeLabel(l.t)}` : 'no value yet'}`;
          })
          .join('; ') + '.'
      : (props.emptyText ?? 'no data yet.'));

  // The last points as a table for screen readers (all series share poll times).
  const rowTimes = [...new Set(times)].sort((a, b) => a - b).slice(-10);

  return (
    <figure class="chart" data-testid={props.testid}>
      <figcaption class="chart-title">{props.title}</figcaption>
      <ul class="chart-legend" aria-hidden="true">
        {props.series.map((s) => {
          const l = latest(s);
          return (
            <li key={s.label}>
              <span class={`chart-swatch${s.dashed ? ' dashed' : ''}`} style={{ borderColor: s.color }} />
              {s.label}: <strong>{l ? props.format(l.v!) : '—'}</strong>
            </li>
          );
        })}
      </ul>
      <div class="chart-plot" ref={box} style={{ height: `${height}px` }}>
        {width > 0 && (
          <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={summary}>
            <text class="chart-axis-title" transform={`translate(12 ${PAD.top + plotH / 2}) rotate(-90)`} text-anchor="middle">
              {props.yLabel}
            </text>
            {ticks.map((v) => (
              <g key={v}>
                <line class="chart-grid" x1={PAD.left} x2={PAD.left + plotW} y1={y(v)} y2={y(v)} />
                <text class="chart-tick" x={PAD.left - 6} y={y(v)} text-anchor="end" dominant-baseline="middle">
                  {props.format(v)}
                </text>
              </g>
            ))}
            {xTicks.map((t, i) => (
              <text
                key={i}
                class="chart-tick"
                x={x(t)}
                y={height - 8}
                text-anchor={i === 0 ? 'start' : i === xTicks.length - 1 ? 'end' : 'middle'}
              >
                {timeLabel(t)}
              </text>
            ))}
            <line class="chart-axis" x1={PAD.left} x2={PAD.left + plotW} y1={PAD.top + plotH} y2={PAD.top + plotH} />
            <line class="chart-axis" x1={PAD.left} x2={PAD.left} y1={PAD.top} y2={PAD.top + plotH} />
            {props.series.map((s) => (
              <g key={s.label} style={{ color: s.color }}>
                <path class={`chart-line${s.dashed ? ' dashed' : ''}`} d={path(s.points)} />
                {s.points.filter((p) => usable(p.v)).map((p) => (
                  <circle key={p.t} class="chart-dot" cx={x(p.t)} cy={y(p.v!)} r={2.5} />
                ))}
              </g>
            ))}
          </svg>
        )}
        {!hasData && <div class="chart-empty">{props.emptyText ?? 'No data yet.'}</div>}
      </div>
      <table class="visually-hidden">
        <caption>{props.title}, latest points</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            {props.series.map((s) => (
              <th scope="col" key={s.label}>
                {s.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rowTimes.map((t) => (
            <tr key={t}>
              <th scope="row">{timeLabel(t)}</th>
              {props.series.map((s) => {
                const p = s.points.find((q) => q.t === t);
                return <td key={s.label}>{p && usable(p.v) ? props.format(p.v) : '—'}</td>;
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
