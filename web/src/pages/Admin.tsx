// The admin view: live lab sessions, live sandboxes and users (refreshed every 5 s while
// the tab is visible), and two charts drawn from the server's /metrics: sandbox create
// latency (p50/p99 per poll interval, from histogram bucket deltas) and live sandboxes.
import { useEffect, useRef, useState } from 'preact/hooks';

import { api, errorText, type Role, type Sandbox, type SessionView, type User } from '../api';
import { Chart } from '../components/Chart';
import { ConfirmButton, Empty, ErrorMessage, Spinner } from '../components/ui';
import { ago, clock } from '../format';
import { formatSeconds, parsePrometheus, pollValues, pushPoint, type Point, type Sample } from '../lib/metrics';
import './Admin.css';

const REFRESH_MS = 5000;
const MAX_POINTS = 60;
const ROLES: Role[] = ['learner', 'author', 'admin'];

function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/** Runs `f` now and every `ms` while the tab is visible (and at once when it shows again). */
function useVisiblePoll(f: () => void, ms: number) {
  const fn = useRef(f);
  fn.current = f;
  const [paused, setPaused] = useState(document.hidden);
  useEffect(() => {
    let t: ReturnType<typeof setInterval> | undefined;
    const stop = () => {
      if (t !== undefined) clearInterval(t);
      t = undefined;
    };
    const start = () => {
      stop();
      t = setInterval(() => fn.current(), ms);
    };
    const vis = () => {
      setPaused(document.hidden);
      if (document.hidden) stop();
      else {
        fn.current();
        start();
      }
    };
    fn.current();
    if (!document.hidden) start();
    document.addEventListener('visibilitychange', vis);
    return () => {
      stop();
      document.removeEventListener('visibilitychange', vis);
    };
  }, [ms]);
  return paused;
}

// The chart history outlives the page (going to another page and back keeps the lines).
interface History {
  prev: Sample[] | null;
  p50: Point[];
  p99: Point[];
  claim: Point[];
  live: Point[];
  terminals: Point[];
  hasClaim: boolean;
}
let history: History = { prev: null, p50: [], p99: [], claim: [], live: [], terminals: [], hasClaim: false };

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
  };
  return history;
}

/** Time left as a clock, or a word once it ran out (the next refresh drops the row). */
function left(ms: number): string {
  return ms > 0 ? clock(ms) : 'expiring';
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
  const now = useNow();

  const inFlight = useRef(false);
  const refresh = async () => {
    if (inFlight.current) return; // a slow answer: skip this tick rather than pile up
    inFlight.current = true;
    try {
      await refreshNow();
    } finally {
      inFlight.current = false;
    }
  };
  const refreshNow = async () => {
    const at = Date.now();
    const [se, sb, us, me] = await Promise.allSettled([api.sessions(), api.sandboxes(), api.users(), api.metrics()]);
    const err: typeof errors = {};
    if (se.status === 'fulfilled') setSessions({ items: se.value.items.filter((s) => s.state !== 'ended'), fetchedAt: at });
    else err.sessions = errorText(se.reason);
    if (sb.status === 'fulfilled')
      setSandboxes({ items: sb.value.items.filter((s) => s.state !== 'removed'), fetchedAt: at });
    else err.sandboxes = errorText(sb.reason);
    if (us.status === 'fulfilled') setUsers(us.value.items);
    else err.users = errorText(us.reason);
    if (me.status === 'fulfilled') setHist(record(me.value, at));
    else err.metrics = errorText(me.reason);
    setErrors(err);
    setUpdated(Date.now());
  };
  const paused = useVisiblePoll(refresh, REFRESH_MS);

  const names = new Map((users ?? []).map((u) => [u.id, u.username]));
  const owner = (id: string | null) => (id === null ? <span class="muted">warm pool</span> : (names.get(id) ?? <code>{id}</code>));

  const act = async (f: () => Promise<unknown>) => {
    setActionError(null);
    try {
      await f();
    } catch (e) {
      setActionError(errorText(e));
    }
    await refresh();
  };

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
        <p class="muted admin-note">Latency is per 5 s poll interval, pool and cold creates together; intervals without creates leave gaps.</p>
      </section>

      <section aria-labelledby="admin-sessions-h">
        <h2 id="admin-sessions-h">
          Lab sessions {sessions && <span class="badge">{sessions.items.length}</span>}
        </h2>
        {errors.sessions && <ErrorMessage message={errors.sessions} retry={refresh} />}
        {!sessions && !errors.sessions && <Spinner label="Loading sessions" />}
        {sessions && (
          <div class="table-wrap">
            <table data-testid="admin-sessions">
              <caption class="visually-hidden">Live lab sessions</caption>
              <thead>
                <tr>
                  <th scope="col">Session</th>
                  <th scope="col">Lab</th>
                  <th scope="col">Owner</th>
                  <th scope="col">State</th>
                  <th scope="col">Age</th>
                  <th scope="col">Time left</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {sessions.items.length === 0 && (
                  <tr>
                    <td colSpan={7} class="muted admin-none">
                      No lab sessions are running.
                    </td>
                  </tr>
                )}
                {sessions.items.map((s) => (
                  <tr key={s.id} data-testid="admin-session-row" data-id={s.id}>
                    <td class="nowrap">
                      <a href={`/sessions/${encodeURIComponent(s.id)}`}>
                        <code>{s.id}</code>
                      </a>
                    </td>
                    <td>{s.lab}</td>
                    <td class="nowrap">{owner(s.owner)}</td>
                    <td>
                      <span class={`badge ${s.state === 'ready' ? 'ok' : s.state === 'failed' ? 'bad' : 'warn'}`}>{s.state}</span>
                    </td>
                    <td class="num">{ago(s.created_at_ms, now)}</td>
                    <td class="num">{left(sessions.fetchedAt + s.ttl_left_ms - now)}</td>
                    <td class="admin-act">
                      <ConfirmButton class="danger small" testid="kill-session" confirm="Click again to end" onConfirm={() => act(() => api.endSession(s.id))}>
                        End
                      </ConfirmButton>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section aria-labelledby="admin-sandboxes-h">
        <h2 id="admin-sandboxes-h">
          Sandboxes {sandboxes && <span class="badge">{sandboxes.items.length}</span>}
        </h2>
        {errors.sandboxes && <ErrorMessage message={errors.sandboxes} retry={refresh} />}
        {!sandboxes && !errors.sandboxes && <Spinner label="Loading sandboxes" />}
        {sandboxes && (
          <div class="table-wrap">
            <table data-testid="admin-sandboxes">
              <caption class="visually-hidden">Live sandboxes</caption>
              <thead>
                <tr>
                  <th scope="col">Sandbox</th>
                  <th scope="col">Owner</th>
                  <th scope="col">Image</th>
                  <th scope="col">State</th>
                  <th scope="col">Age</th>
                  <th scope="col">Time left</th>
                  <th scope="col">Limits</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {sandboxes.items.length === 0 && (
                  <tr>
                    <td colSpan={8} class="muted admin-none">
                      No sandboxes are running.
                    </td>
                  </tr>
                )}
                {sandboxes.items.map((s) => (
                  <tr key={s.id} data-testid="admin-sandbox-row" data-id={s.id}>
                    <td class="nowrap">
                      <a href={`/playground/${encodeURIComponent(s.id)}`}>
                        <code>{s.id}</code>
                      </a>
                    </td>
                    <td class="nowrap">{owner(s.owner)}</td>
                    <td>{s.image}</td>
                    <td>
                      <span class={`badge ${s.state === 'running' ? 'ok' : s.state === 'failed' ? 'bad' : 'warn'}`} title={s.reason ?? undefined}>
                        {s.state}
                      </span>
                    </td>
                    <td class="num">{ago(s.created_at_ms, now)}</td>
                    <td class="num">{left(sandboxes.fetchedAt + s.ttl_left_ms - now)}</td>
                    <td class="admin-limits">
                      <span title="Memory">{s.limits.memory}</span> · <span title="CPUs">{s.limits.cpus} CPU</span> ·{' '}
                      <span title="Most processes">{s.limits.pids} pids</span> · <span title="Disk">{s.limits.disk} disk</span> ·{' '}
                      <span title="Network">{s.limits.network}</span>
                    </td>
                    <td class="admin-act">
                      <ConfirmButton class="danger small" testid="kill-sandbox" confirm="Click again to kill" onConfirm={() => act(() => api.deleteSandbox(s.id))}>
                        Kill
                      </ConfirmButton>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <Users me={props.user} users={users} error={errors.users} reload={refresh} />
    </main>
  );
}

function Users(props: { me: User; users: User[] | null; error?: string; reload: () => Promise<void> }) {
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  // Bumped after a refused change so the role selects show the stored role again.
  const [version, setVersion] = useState(0);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('learner');
  const [adding, setAdding] = useState(false);

  const change = async (u: User, patch: { role?: Role; disabled?: boolean }, what: string) => {
    setError(null);
    setDone(null);
    setBusy(u.id);
    try {
      await api.updateUser(u.id, patch);
      setDone(`${u.username} ${what}.`);
    } catch (e) {
      setError(errorText(e));
      setVersion((v) => v + 1);
    } finally {
      setBusy(null);
    }
    await props.reload();
  };

  const add = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setDone(null);
    if (!username.trim()) return setError('Type a username for the new account.');
    if (password.length < 8) return setError('The password must have at least 8 characters.');
    setAdding(true);
    try {
      const u = await api.createUser(username.trim(), password, role);
      setDone(`Added ${u.username} as ${u.role}.`);
      setUsername('');
      setPassword('');
      setRole('learner');
    } catch (err) {
      setError(errorText(err));
    } finally {
      setAdding(false);
    }
    await props.reload();
  };

  return (
    <section aria-labelledby="admin-users-h">
      <h2 id="admin-users-h">
        Users {props.users && <span class="badge">{props.users.length}</span>}
      </h2>
      {props.error && <ErrorMessage message={props.error} retry={props.reload} />}
      {error && <ErrorMessage message={error} />}
      {done && (
        <p class="admin-done" role="status">
          {done}
        </p>
      )}
      <form class="card admin-add" onSubmit={add} aria-label="Add a user">
        <div class="field">
          <label for="nu-name">Username</label>
          <input id="nu-name" data-testid="new-user-name" value={username} autocomplete="off" spellcheck={false} onInput={(e) => setUsername((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="nu-pass">Password</label>
          <input
            id="nu-pass"
            data-testid="new-user-password"
            type="password"
            value={password}
            autocomplete="new-password"
            onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field">
          <label for="nu-role">Role</label>
          <select id="nu-role" data-testid="new-user-role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <div class="field admin-add-go">
          <button type="submit" data-testid="add-user" disabled={adding}>
            {adding ? 'Adding…' : 'Add user'}
          </button>
        </div>
      </form>
      {!props.users && !props.error && <Spinner label="Loading users" />}
      {props.users && props.users.length === 0 && <Empty>No users.</Empty>}
      {props.users && props.users.length > 0 && (
        <div class="table-wrap">
          <table data-testid="admin-users">
            <caption class="visually-hidden">Users</caption>
            <thead>
              <tr>
                <th scope="col">Username</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {props.users.map((u) => (
                <tr key={`${u.id}-${version}`} data-testid="admin-user-row" data-id={u.id} data-username={u.username}>
                  <td>
                    {u.username}
                    {u.id === props.me.id && <span class="muted"> (you)</span>}
                  </td>
                  <td>
                    <select
                      aria-label={`Role of ${u.username}`}
                      data-testid="user-role"
                      value={u.role}
                      disabled={busy === u.id}
                      onChange={(e) => {
                        const r = (e.target as HTMLSelectElement).value as Role;
                        if (r !== u.role) change(u, { role: r }, `is now ${r === 'admin' ? 'an' : 'a'} ${r}`);
                      }}
                    >
                      {ROLES.map((r) => (
                        <option key={r} value={r}>
                          {r}
                        </option>
                      ))}
                    </select>
                  </td>
                  <td>{u.disabled ? <span class="badge bad">disabled</span> : <span class="badge ok">active</span>}</td>
                  <td class="num">{new Date(u.created_at_ms).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' })}</td>
                  <td class="admin-act">
                    <button
                      type="button"
                      class={`small ${u.disabled ? 'secondary' : 'danger'}`}
                      data-testid="toggle-user"
                      disabled={busy === u.id}
                      onClick={() => change(u, { disabled: !u.disabled }, u.disabled ? 'can sign in again' : 'is disabled')}
                    >
                      {u.disabled ? 'Enable' : 'Disable'}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
