// A running lab: the lab text with its task checklist on the left, the lab's tabs on the
// right (a terminal per node unless the lab says otherwise; services, editors, websites;
// components/tabs/Workbench.tsx), stacked below ~900 px. Task and session states arrive
// live over SSE; the timer counts down the session's time; the session can be extended or
// stopped. The nodes' listening ports are polled while the page shows (for the "+" menu).
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';

import { api, ApiError, errorText, type LabDetail, type SessionState, type SessionView, type TaskState, type User } from '../api';
import { LabText, type PortLink } from '../components/LabText';
import { usePorts } from '../components/ports/usePorts';
import { SessionTimer } from '../components/SessionTimer';
import { Split } from '../components/Split';
import { Workbench, type WorkbenchControl } from '../components/tabs/Workbench';
import { TaskIcon } from '../components/TaskIcon';
import { TaskList, type HintState } from '../components/TaskList';
import { ConfirmButton, ErrorMessage, Spinner } from '../components/ui';
import { taskName } from '../format';
import { startLabSession } from '../lib/session';
import { navigate } from '../router';
import './SessionPage.css';

const STATE_LABEL: Record<SessionState, string> = {
  starting: 'Starting',
  ready: 'Ready',
  failed: 'Failed',
  ended: 'Ended',
};

/** "The session's time ran out." → "the session's time ran out" (for use mid-sentence). */
function clause(reason: string | null): string {
  const r = (reason ?? 'it was stopped').trim().replace(/[.\s]+$/, '');
  return /^(The|A|An|It|Your) /.test(r) ? r.charAt(0).toLowerCase() + r.slice(1) : r;
}

interface Live {
  state: SessionState;
  reason: string | null;
}

export function SessionPage(props: { id: string; user: User }) {
  const id = props.id;
  const [session, setSession] = useState<SessionView | null>(null);
  const [lab, setLab] = useState<LabDetail | null>(null);
  const [fatal, setFatal] = useState<{ message: string; notFound: boolean } | null>(null);
  const [live, setLive] = useState<Live>({ state: 'starting', reason: null });
  const [states, setStates] = useState<Record<string, TaskState>>({});
  const [deadline, setDeadline] = useState(0);
  const [hints, setHints] = useState<Record<string, HintState>>({});
  const [announce, setAnnounce] = useState('');
  const [actionError, setActionError] = useState('');
  const [extending, setExtending] = useState(false);
  const [restarting, setRestarting] = useState(false);
  const bench = useRef<WorkbenchControl | null>(null);
  const statesRef = useRef(states);
  const liveRef = useRef(live);
  liveRef.current = live;
  const labRef = useRef(lab);
  labRef.current = lab;

  /** Merges task states, announcing checked tasks that just turned done. */
  const mergeStates = useCallback((next: Record<string, TaskState>, quiet = false) => {
    const prev = statesRef.current;
    const merged = { ...prev, ...next };
    if (!quiet) {
      const newlyDone = Object.keys(next).filter(
        (t) => next[t] === 'done' && prev[t] && prev[t] !== 'done' && !labRef.current?.task_list.find((x) => x.id === t)?.init,
      );
      if (newlyDone.length) setAnnounce(`Task done: ${newlyDone.map(taskName).join(', ')}.`);
    }
    statesRef.current = merged;
    setStates(merged);
  }, []);

  const apply = useCallback(
    (s: SessionView, quiet = false) => {
      setSession(s);
      setLive({ state: s.state, reason: s.reason });
      if (s.tasks.length) mergeStates(Object.fromEntries(s.tasks.map((t) => [t.id, t.state])), quiet);
      setDeadline(Date.now() + s.ttl_left_ms);
    },
    [mergeStates],
  );

  const markGone = () => setLive({ state: 'ended', reason: 'The session no longer exists.' });

  const load = () => {
    setFatal(null);
    api
      .session(id)
      .then(async (s) => {
        apply(s, true);
        const l = await api.lab(s.lab);
        setLab(l);
        document.title = `${l.title} · Sandlab`;
        // Hints revealed earlier are shown again.
        const revealed = s.tasks.filter((t) => t.hint_revealed && l.task_list.find((x) => x.id === t.id)?.has_hint);
        for (const t of revealed) {
          api
            .hint(id, t.id)
            .then((h) => setHints((m) => ({ ...m, [t.id]: { html: h.html } })))
            .catch(() => {});
        }
      })
      .catch((e) => setFatal({ message: errorText(e), notFound: e instanceof ApiError && e.status === 404 }));
  };
  useEffect(load, [id]);

  // Re-reads the session (after an SSE error or when the timer hits 0). Every timer is
  // tracked and cleared when the page leaves this session; late answers are ignored.
  const timers = useRef(new Set<number>());
  const later = useCallback((fn: () => void, ms: number) => {
    const t = window.setTimeout(() => {
      timers.current.delete(t);
      fn();
    }, ms);
    timers.current.add(t);
  }, []);
  const resyncTimer = useRef(0);
  const currentId = useRef<string | null>(id);
  const resync = useCallback(() => {
    if (resyncTimer.current) return;
    resyncTimer.current = window.setTimeout(() => {
      resyncTimer.current = 0;
      api
        .session(id)
        .then((s) => {
          if (currentId.current === id) apply(s);
        })
        .catch((e) => {
          if (currentId.current === id && e instanceof ApiError && e.status === 404) markGone();
        });
    }, 300);
  }, [id, apply]);
  useEffect(() => {
    currentId.current = id;
    const pending = timers.current;
    return () => {
      currentId.current = null;
      pending.forEach((t) => clearTimeout(t));
      pending.clear();
      clearTimeout(resyncTimer.current);
      resyncTimer.current = 0;
    };
  }, [id]);

  // The live stream of task and session states.
  const streaming = !!session && (live.state === 'starting' || live.state === 'ready');
  useEffect(() => {
    if (!streaming) return;
    const es = new EventSource(api.eventsUrl(id));
    es.addEventListener('task', (ev) => {
      try {
        const d = JSON.parse((ev as MessageEvent).data) as { task: string; state: TaskState };
        mergeStates({ [d.task]: d.state });
      } catch {
        /* a malformed event: the next resync fixes the view */
      }
    });
    es.addEventListener('session', (ev) => {
      try {
        const d = JSON.parse((ev as MessageEvent).data) as Live;
        setLive({ state: d.state, reason: d.reason });
        if (d.state === 'ended') es.close();
      } catch {
        /* as above */
      }
    });
    // EventSource reconnects by itself; either way re-read the session to catch up on
    // what the gap missed (or to learn that it ended or is gone).
    es.onerror = () => resync();
    return () => es.close();
  }, [streaming, id]);

  const onTimerZero = useCallback(() => {
    // The server ends the session at its deadline; give it a moment, then look.
    later(resync, 1500);
    later(resync, 5000);
  }, [resync, later]);

  const ready = !!session && live.state === 'ready';
  const ports = usePorts(ready ? session.nodes.map((n) => n.sandbox) : []);

  const checked = useMemo(() => (lab ? lab.task_list.filter((t) => !t.init) : []), [lab]);
  const initTasks = useMemo(() => (lab ? lab.task_list.filter((t) => t.init) : []), [lab]);
  const allDone = checked.length > 0 && checked.every((t) => states[t.id] === 'done');

  const showHint = async (task: string) => {
    setHints((m) => ({ ...m, [task]: { busy: true } }));
    try {
      const h = await api.hint(id, task);
      setHints((m) => ({ ...m, [task]: { html: h.html } }));
    } catch (e) {
      setHints((m) => ({ ...m, [task]: { error: errorText(e) } }));
    }
  };

  const extend = async () => {
    if (!lab) return;
    setExtending(true);
    setActionError('');
    try {
      apply(await api.extendSession(id, `${Math.max(1, Math.round(lab.ttl_ms / 60000))}m`));
    } catch (e) {
      setActionError(errorText(e));
    } finally {
      setExtending(false);
    }
  };

  const stop = async () => {
    setActionError('');
    try {
      await api.endSession(id);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) {
        setActionError(errorText(e));
        return;
      }
    }
    navigate(`/labs/${encodeURIComponent(session?.lab ?? '')}`);
  };

  const startAgain = async () => {
    if (!session) return;
    setRestarting(true);
    setActionError('');
    try {
      await startLabSession(session.lab);
    } catch (e) {
      setActionError(errorText(e));
      setRestarting(false);
    }
  };

  if (fatal)
    return (
      <main class="page narrow">
        <ErrorMessage message={fatal.message} retry={fatal.notFound ? undefined : load} />
        <p>
          <a href="/">Back to the labs</a>
          {fatal.notFound && (
            <>
              {' · '}
              <a href="/progress">Your sessions</a>
            </>
          )}
        </p>
      </main>
    );
  if (!session || !lab) return <Spinner label="Opening the lab" />;

  const ended = live.state === 'ended';
  // Run types into the block's own node, switching to its terminal tab.
  const onRun = ready ? (cmd: string, node: string) => bench.current?.run(cmd, node) : null;
  const onPort = ready
    ? (link: PortLink) => (link.select ? bench.current?.pickPort() : bench.current?.openPort(link.node, link.port, link.path))
    : null;

  return (
    <main class="session-page">
      <header class="session-bar">
        <div class="session-title">
          <a href={`/labs/${encodeURIComponent(lab.slug)}`} class="session-lab">
            {lab.title}
          </a>
          <span
            class={`badge session-badge ${live.state === 'ready' ? 'ok' : live.state === 'starting' ? 'warn' : live.state === 'failed' ? 'bad' : ''}`}
            data-testid="session-state"
            data-state={live.state}
          >
            {STATE_LABEL[live.state] ?? live.state}
          </span>
        </div>
        <div class="session-actions">
          {!ended && live.state !== 'failed' && (
            <>
              <SessionTimer deadline={deadline} onZero={onTimerZero} />
              <button
                type="button"
                class="secondary small"
                data-testid="extend-session"
                disabled={extending}
                onClick={extend}
                title={`Reset the time left to ${Math.round(lab.ttl_ms / 60000)} minutes`}
              >
                {extending ? 'Extending…' : 'Extend'}
              </button>
            </>
          )}
          {!ended && (
            <ConfirmButton class="danger small" testid="stop-session" confirm="Stop? Click again" onConfirm={stop}>
              Stop
            </ConfirmButton>
          )}
        </div>
      </header>
      {actionError && (
        <div class="session-msg">
          <ErrorMessage message={actionError} />
        </div>
      )}
      {ended && (
        <div class="session-msg">
          <div class="session-ended" role="alert" data-testid="session-expired">
            <div>
              <strong>This session has ended: {clause(live.reason)}.</strong> Your progress is saved.
            </div>
            <div class="row">
              <button type="button" onClick={startAgain} disabled={restarting}>
                {restarting ? 'Starting…' : 'Start the lab again'}
              </button>
              <a class="button secondary" href="/">
                Back to the labs
              </a>
            </div>
          </div>
        </div>
      )}
      {allDone && !ended && (
        <div class="session-msg">
          <div class="session-complete" role="status" data-testid="lab-complete">
            <span class="session-complete-icon" aria-hidden="true">
              ✓
            </span>
            <div>
              <strong>All tasks are done. Well done!</strong> Your progress is saved; keep exploring or stop the session to free
              its machines.
            </div>
            <a class="button secondary small" href="/">
              More labs
            </a>
          </div>
        </div>
      )}
      <Split>
        <section class="session-text" aria-label="Lab instructions" tabIndex={-1}>
          {checked.length > 0 && (
            <TaskList tasks={checked} states={states} hints={hints} onHint={showHint} hintsEnabled={!ended} />
          )}
          <LabText
            html={lab.html}
            execBlocks={lab.exec_blocks}
            states={states}
            onRun={onRun}
            onPort={onPort}
            multiNode={session.nodes.length > 1}
          />
        </section>
        <section class="session-term" aria-label="Machines">
          {ready && (
            <Workbench
              key={id}
              storeAs={id}
              nodes={session.nodes}
              initial={lab.tabs}
              ports={ports}
              control={bench}
              editors
              label="Tabs"
            />
          )}
          {live.state === 'starting' && (
            <div class="term-placeholder" role="status" aria-live="polite">
              <span class="spinner-dot big" aria-hidden="true" />
              {lab.cluster === 'kubernetes' ? (
                <>
                  <h2>Starting your Kubernetes cluster…</h2>
                  <p class="muted">
                    kubeadm is bringing up the control plane and joining the nodes (20 to 40 seconds); the
                    terminal opens once every node is Ready.
                  </p>
                </>
              ) : (
                <>
                  <h2>Setting up your lab…</h2>
                  <p class="muted">The machines are running; the lab's setup steps run first.</p>
                </>
              )}
              {initTasks.length > 0 && (
                <ul class="init-list">
                  {initTasks.map((t) => (
                    <li data-task={t.id} data-state={states[t.id] ?? 'pending'}>
                      <TaskIcon state={states[t.id] ?? 'pending'} /> {taskName(t.id)}
                    </li>
                  ))}
                </ul>
              )}
            </div>
          )}
          {live.state === 'failed' && (
            <div class="term-placeholder">
              <ErrorMessage message={live.reason ?? 'The lab could not be set up.'} />
              <p class="muted">Stop this session and start the lab again; if it keeps failing, tell the lab's author.</p>
              <div class="row">
                <ConfirmButton class="danger" confirm="Stop it? Click again" onConfirm={stop}>
                  Stop this session
                </ConfirmButton>
                <a class="button secondary" href={`/labs/${encodeURIComponent(lab.slug)}`}>
                  Back to the lab
                </a>
              </div>
            </div>
          )}
          {ended && (
            <div class="term-placeholder">
              <p class="muted">The machines of this session have been removed.</p>
            </div>
          )}
        </section>
      </Split>
      <div class="sr-only" aria-live="polite" role="status">
        {announce}
      </div>
    </main>
  );
}
