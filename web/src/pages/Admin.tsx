// The admin view: live lab sessions, live sandboxes and users (refreshed every 5 s while
// the tab is visible), invite links to sign up with, and two charts drawn from the server's /metrics: sandbox create
// latency (p50/p99 per poll interval, from histogram bucket deltas) and live sandboxes.
import type { ComponentChildren } from 'preact';
import { useRef, useState } from 'preact/hooks';

import { api, errorText, type Sandbox, type SessionView, type User } from '../api';
import { Chart } from '../components/Chart';
import { ConfirmButton, ErrorMessage, Spinner } from '../components/ui';
import { ago, clock } from '../format';
import { useNow, useVisiblePoll } from '../hooks';
import { formatSeconds, parsePrometheus, pollValues, pushPoint, type Point, type Sample } from '../lib/metrics';
import { Invites } from './admin/Invites';
import { Users } from './admin/Users';
import './Admin.css';

const REFRESH_MS = 5000;
const MAX_POINTS = 60;

// The chart history outlives the page (going to another page and back keeps the lines).
interface History {
  prev: Sample[] | null;
  p50: Point[];
  p99: Point[];
  claim: Point[];
  live: Point[];
  terminals: Point[];
  hasClaim: boolean;
  /** Since the server started: creates and their p50/p99 (from the last poll). */
  total: { creates: number; p50: number | null; p99: number | null } | null;
}
let history: History = { prev: null, p50: [], p99: [], claim: [], live: [], terminals: [], hasClaim: false, total: null };

function record(text: string, t: number): History {
  const cur = parsePrometheus(text);
  const v = pollValues(cur, history.prev);
  const h = history;
  const push = (pts: Point[], val: number | null) => pushPoint(pts, { t, v: val }, MAX_POINTS);
  history = {
    prev: cur,
    // Latency needs two polls: the first poll only sets the baseline.
    p50: h.prev ? push(h.p50, v.createP50) : h.p50,
    p99: h.prev ? push(h.p99, v.createP99) : h.p99,
    claim: h.prev ? push(h.claim, v.claimP50) : h.claim,
    live: push(h.live, v.live),
    terminals: push(h.terminals, v.terminals),
    hasClaim: v.hasPoolClaim,
    total: { creates: v.totalCreates, p50: v.totalP50, p99: v.totalP99 },
  };
  return history;
}

interface Data<T> {
  items: T[];
  fetchedAt: number;
}

export function Admin(props: { user: User }) {
  const [sessions, setSessions] = useState<Data<SessionView> | null>(null);
  const [sandboxes, setSandboxes] = useState<Data<Sandbox> | null>(null);
  const [users, setUsers] = useState<User[] | null>(null);
  const [errors, setErrors] = useState<{ sessions?: string; sandboxes?: string; users?: string; metrics?: string }>({});
  const [actionError, setActionError] = useState<string | null>(null);
  const [hist, setHist] = useState<History>(history);
  const [updated, setUpdated] = useState<number | null>(null);
  // Rows ended or killed here: hidden at once, until the server stops listing them.
  const [gone, setGone] = useState<ReadonlySet<string>>(new Set());
  const now = useNow();

  const refreshNow = async () => {
    const at = Date.now();
    const [se, sb, us, me] = await Promise.allSettled([api.activeSessions(), api.sandboxes(), api.users(), api.metrics()]);
    const err: typeof errors = {};
    // The server leaves ended sessions out (?active=true); the filter also covers an older server.
    if (se.status === 'fulfilled') setSessions({ items: se.value.items.filter((s) => s.state !== 'ended'), fetchedAt: at });
    else err.sessions = errorText(se.reason);
    if (sb.status === 'fulfilled') setSandboxes({ items: sb.value.items.filter((s) => s.state !== 'removed'), fetchedAt: at });
    else err.sandboxes = errorText(sb.reason);
    if (se.status === 'fulfilled' && sb.status === 'fulfilled') {
      const listed = new Set([...se.value.items.map((s) => s.id), ...sb.value.items.filter((s) => s.state !== 'removed').map((s) => s.id)]);
      setGone((g) => (g.size ? new Set([...g].filter((id) => listed.has(id))) : g));
    }
    if (us.status === 'fulfilled') setUsers(us.value.items);
    else err.users = errorText(us.reason);
    if (me.status === 'fulfilled') setHist(record(me.value, at));
    else err.metrics = errorText(me.reason);
    setErrors(err);
    setUpdated(Date.now());
  };

  // One refresh at a time. A poll tick during one is skipped (no pile-up on a slow
  // server); a refresh asked for after a change runs again once the current one ends, so
  // it shows the change, and its promise settles then.
  const running = useRef<Promise<void> | null>(null);
  const queued = useRef<Promise<void> | null>(null);
  const refresh = (): Promise<void> => {
    if (running.current) {
      queued.current ??= running.current.then(() => {
        queued.current = null;
        return refresh();
      });
      return queued.current;
    }
    const p = refreshNow().finally(() => {
      running.current = null;
    });
    running.current = p;
    return p;
  };
  const poll = () => {
    if (!running.current) refresh();
  };
  const paused = useVisiblePoll(poll, REFRESH_MS);

  const names = new Map((users ?? []).map((u) => [u.id, u.username]));
  const owner = (id: string | null) => (id === null ? <span class="muted">warm pool</span> : (names.get(id) ?? <code>{id}</code>));

  const act = async (f: () => Promise<unknown>, id?: string) => {
    setActionError(null);
    try {
      await f();
      if (id) setGone((g) => new Set(g).add(id));
    } catch (e) {
      setActionError(errorText(e));
    }
    await refresh();
  };

  const liveSessions = sessions?.items.filter((s) => !gone.has(s.id));
  const liveSandboxes = sandboxes?.items.filter((s) => !gone.has(s.id));

  return (
    <main class="page admin">
      <div class="admin-head">
        <h1>Admin</h1>
        <p class="muted admin-updated">
          {paused
            ? 'Updates are paused while this tab is hidden.'
            : updated
              ? `Updated ${ago(updated, now)}; refreshes every 5 s.`
              : 'Loading…'}
        </p>
      </div>
      {actionError && <ErrorMessage message={actionError} />}

      <section aria-labelledby="admin-charts-h">
        <h2 id="admin-charts-h">Activity</h2>
        {errors.metrics && <ErrorMessage message={errors.metrics} />}
        <div class="admin-charts">
          <Chart
            testid="chart-create-latency"
            title="Sandbox create latency"
            yLabel="seconds (log)"
            scale="log"
            format={formatSeconds}
            emptyText={hist.prev ? 'No sandboxes created since this page opened.' : 'Waiting for the second poll of /metrics…'}
            series={[
              { label: 'p50', color: 'var(--accent)', points: hist.p50 },
              { label: 'p99', color: 'var(--bad)', points: hist.p99 },
              ...(hist.hasClaim ? [{ label: 'pool claim p50', color: 'var(--ok)', points: hist.claim, dashed: true }] : []),
            ]}
          />
          <Chart
            testid="chart-active-sandboxes"
            title="Live sandboxes and open terminals"
            yLabel="count"
            integer
            format={(v) => String(Math.round(v))}
            emptyText="Waiting for /metrics…"
            series={[
              { label: 'sandboxes', color: 'var(--accent)', points: hist.live },
              { label: 'terminals', color: 'var(--warn)', points: hist.terminals, dashed: true },
            ]}
          />
        </div>
        <p class="muted admin-note" data-testid="create-latency-total">
          {hist.total && hist.total.creates > 0
            ? `Since the server started: ${hist.total.creates} ${hist.total.creates === 1 ? "sandbox" : "sandboxes"} created, p50 ${formatSeconds(hist.total.p50)}, p99 ${formatSeconds(hist.total.p99)}. `
            : ''}
          The chart shows latency per 5 s poll interval, pool and cold creates together; intervals without creates leave gaps.
        </p>
      </section>

      <LiveTable
        id="admin-sessions"
        title="Lab sessions"
        caption="Live lab sessions"
        columns={['Session', 'Lab', 'Owner', 'State', 'Age', 'Time left']}
        none="No lab sessions are running."
        count={liveSessions?.length}
        error={errors.sessions}
        retry={refresh}
      >
        {sessions &&
          liveSessions?.map((s) => (
            <tr key={s.id} data-testid="admin-session-row" data-id={s.id}>
              {/* Only one's own session page: another user's would attach their terminals and displace them. */}
              <IdCell id={s.id} href={s.owner === props.user.id ? `/sessions/${encodeURIComponent(s.id)}` : null} />
              <td>{s.lab}</td>
              <td class="nowrap">{owner(s.owner)}</td>
              <StateCell state={s.state} ok="ready" />
              <TimeCells created={s.created_at_ms} left={sessions.fetchedAt + s.ttl_left_ms - now} now={now} />
              <KillCell testid="kill-session" confirm="Click again to end" onConfirm={() => act(() => api.endSession(s.id), s.id)}>
                End
              </KillCell>
            </tr>
          ))}
      </LiveTable>

      <LiveTable
        id="admin-sandboxes"
        title="Sandboxes"
        caption="Live sandboxes"
        columns={['Sandbox', 'Owner', 'Image', 'State', 'Age', 'Time left', 'Limits']}
        none="No sandboxes are running."
        count={liveSandboxes?.length}
        error={errors.sandboxes}
        retry={refresh}
      >
        {sandboxes &&
          liveSandboxes?.map((s) => (
            <tr key={s.id} data-testid="admin-sandbox-row" data-id={s.id}>
              {/* The playground page gives an admin a shell of their own ("admin"), not the owner's. */}
              <IdCell id={s.id} href={s.owner !== null ? `/playground/${encodeURIComponent(s.id)}` : null} />
              <td class="nowrap">{owner(s.owner)}</td>
              <td>{s.image}</td>
              <StateCell state={s.state} ok="running" title={s.reason} />
              <TimeCells created={s.created_at_ms} left={sandboxes.fetchedAt + s.ttl_left_ms - now} now={now} />
              <td class="admin-limits">
                <span title="Memory">{s.limits.memory}</span> · <span title="CPUs">{s.limits.cpus} CPU</span> ·{' '}
                <span title="Most processes">{s.limits.pids} pids</span> · <span title="Disk">{s.limits.disk} disk</span> ·{' '}
                <span title="Network">{s.limits.network}</span>
              </td>
              <KillCell testid="kill-sandbox" confirm="Click again to kill" onConfirm={() => act(() => api.deleteSandbox(s.id), s.id)}>
                Kill
              </KillCell>
            </tr>
          ))}
      </LiveTable>

      <Users me={props.user} users={users} error={errors.users} reload={refresh} />
      <Invites users={users} />
    </main>
  );
}

// ---------------------------------------------------------------------------------------
// The pieces shared by the sessions and sandboxes tables.

/** A section with a live table: heading with a count, error, spinner, header row, "none" row. */
function LiveTable(props: {
  id: string;
  title: string;
  caption: string;
  columns: string[];
  none: string;
  /** Rows shown (undefined while loading). */
  count?: number;
  error?: string;
  retry: () => void;
  children: ComponentChildren;
}) {
  const loading = props.count === undefined;
  return (
    <section aria-labelledby={`${props.id}-h`}>
      <h2 id={`${props.id}-h`}>
        {props.title} {!loading && <span class="badge">{props.count}</span>}
      </h2>
      {props.error && <ErrorMessage message={props.error} retry={props.retry} />}
      {loading && !props.error && <Spinner label={`Loading ${props.title.toLowerCase()}`} />}
      {!loading && (
        <div class="table-wrap">
          <table data-testid={props.id}>
            <caption class="visually-hidden">{props.caption}</caption>
            <thead>
              <tr>
                {props.columns.map((c) => (
                  <th key={c} scope="col">
                    {c}
                  </th>
                ))}
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {props.count === 0 && (
                <tr>
                  <td colSpan={props.columns.length + 1} class="muted admin-none">
                    {props.none}
                  </td>
                </tr>
              )}
              {props.children}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function IdCell(props: { id: string; href: string | null }) {
  return <td class="nowrap">{props.href ? <a href={props.href}><code>{props.id}</code></a> : <code>{props.id}</code>}</td>;
}

function StateCell(props: { state: string; ok: string; title?: string | null }) {
  const tone = props.state === props.ok ? 'ok' : props.state === 'failed' ? 'bad' : 'warn';
  return (
    <td>
      <span class={`badge ${tone}`} title={props.title ?? undefined}>
        {props.state}
      </span>
    </td>
  );
}

/** Age and time left (a word once it ran out: the next refresh drops the row). */
function TimeCells(props: { created: number; left: number; now: number }) {
  return (
    <>
      <td class="num">{ago(props.created, props.now)}</td>
      <td class="num">{props.left > 0 ? clock(props.left) : 'expiring'}</td>
    </>
  );
}

function KillCell(props: { testid: string; confirm: string; onConfirm: () => Promise<void>; children: ComponentChildren }) {
  return (
    <td class="admin-act">
      <ConfirmButton class="danger small" testid={props.testid} confirm={props.confirm} onConfirm={props.onConfirm}>
        {props.children}
      </ConfirmButton>
    </td>
  );
}
