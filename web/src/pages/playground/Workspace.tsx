// /playground/:id: one sandbox with a file tree, an editor and a terminal side by side,
// its time left (extendable) and a stop button. The ports listening inside are listed as
// they appear (polled every 2 s), each opened in a tab beside the terminal or shared.
import { useEffect, useRef, useState } from 'preact/hooks';

import { ApiError, api, errorText, type Sandbox, type Tab, type User } from '../../api';
import { FilePanes } from '../../components/FilePanes';
import { PortList } from '../../components/ports/PortList';
import { ShareDialog } from '../../components/ports/ShareDialog';
import { usePorts } from '../../components/ports/usePorts';
import { Workbench, type WorkbenchControl } from '../../components/tabs/Workbench';
import { ConfirmButton, ErrorMessage, Spinner } from '../../components/ui';
import { clock, duration } from '../../format';
import { useNow } from '../../hooks';
import { navigate } from '../../router';

/** The playground's one node, as the workbench names it. */
const NODE = 'playground';
const TERMINAL: Tab[] = [{ kind: 'terminal', node: NODE, port: null, path: null, url: null, title: 'Terminal' }];

type Loaded = { state: 'loading' } | { state: 'error'; message: string; status: number } | { state: 'ok'; sb: Sandbox; deadline: number };

/** What "Extend" adds to the time left. */
const EXTEND_MS = 30 * 60_000;

/** The TTL (whole minutes) that gives `leftMs + EXTEND_MS` from now: never shorter than now. */
export function extendTtl(leftMs: number): string {
  return `${Math.ceil((Math.max(0, leftMs) + EXTEND_MS) / 60_000)}m`;
}

/** The server's maximum TTL in seconds, read from its 400 answer's sentence, or null. */
function maxTtlSeconds(e: unknown): number | null {
  if (!(e instanceof ApiError) || e.status !== 400) return null;
  const m = /maximum of (\d+)s/.exec(e.message);
  return m ? Number(m[1]) : null;
}

function goneText(sb: Sandbox): string | null {
  if (sb.state === 'running' || sb.state === 'creating') return null;
  return sb.reason ? `This sandbox is ${sb.state}: ${sb.reason}` : `This sandbox is ${sb.state}; its files are gone.`;
}

export function Workspace(props: { id: string; user: User }) {
  const id = props.id;
  const [loaded, setLoaded] = useState<Loaded>({ state: 'loading' });
  const [expired, setExpired] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [actionNote, setActionNote] = useState<string | null>(null);
  const [extending, setExtending] = useState(false);
  const [ownerName, setOwnerName] = useState<string | null>(null);
  const [sharing, setSharing] = useState<number | null>(null);
  const bench = useRef<WorkbenchControl | null>(null);
  const now = useNow();
  // Answers of GET (polls) and POST extend may cross: only the latest request's is applied.
  const seq = useRef(0);

  const apply = (sb: Sandbox) => {
    setLoaded({ state: 'ok', sb, deadline: Date.now() + sb.ttl_left_ms });
    const gone = goneText(sb);
    if (gone) setExpired(gone);
  };

  const load = async (first: boolean) => {
    const mine = ++seq.current;
    try {
      const sb = await api.sandbox(id);
      if (mine === seq.current) apply(sb);
    } catch (e) {
      if (mine !== seq.current) return;
      if (first) setLoaded({ state: 'error', message: errorText(e), status: (e as { status?: number }).status ?? 0 });
      else if ((e as { status?: number }).status === 404) setExpired('This sandbox has expired or was stopped, and has been removed; its files are gone.');
    }
  };
  useEffect(() => {
    load(true);
  }, [id]);
  // Check now and then whether it still exists (it may be stopped or extended elsewhere).
  useEffect(() => {
    if (loaded.state !== 'ok' || expired) return;
    const t = setInterval(() => !document.hidden && load(false), 20_000);
    return () => clearInterval(t);
  }, [loaded.state, expired]);

  const left = loaded.state === 'ok' ? loaded.deadline - now : 0;
  // The local countdown ran out: ask the server (it may have been extended in another tab)
  // and keep asking every few seconds until it says the sandbox is gone or has time again.
  const overdue = loaded.state === 'ok' && !expired && left <= 0;
  useEffect(() => {
    if (!overdue) return;
    load(false);
    const t = setInterval(() => load(false), 3000);
    return () => clearInterval(t);
  }, [overdue]);

  // Someone else's sandbox (an admin looking at it): a shell of one's own, never the
  // owner's `main` terminal (attaching it would displace the owner).
  const sb = loaded.state === 'ok' ? loaded.sb : null;
  const foreign = sb !== null && sb.owner !== props.user.id;
  const ports = usePorts(sb && !expired ? [id] : []);
  useEffect(() => {
    if (!foreign || !sb?.owner || props.user.role !== 'admin') return;
    const owner = sb.owner;
    api
      .users()
      .then((r) => setOwnerName(r.items.find((u) => u.id === owner)?.username ?? null))
      .catch(() => setOwnerName(null));
  }, [foreign, sb?.owner]);

  const extend = async () => {
    const mine = ++seq.current;
    setExtending(true);
    setActionError(null);
    setActionNote(null);
    try {
      let got: Sandbox;
      try {
        got = await api.extendSandbox(id, extendTtl(left));
      } catch (e) {
        // Over the server's maximum: extend to the maximum, if that is still longer.
        const max = maxTtlSeconds(e);
        if (max === null || max * 1000 <= left + 60_000) throw e;
        got = await api.extendSandbox(id, `${max}s`);
        setActionNote(`The server allows at most ${duration(max * 1000)} from now; the sandbox now has that long left.`);
      }
      if (mine === seq.current) apply(got);
    } catch (e) {
      setActionError(errorText(e));
    } finally {
      setExtending(false);
    }
  };

  const stop = async () => {
    setActionError(null);
    try {
      await api.deleteSandbox(id);
      navigate('/playground');
    } catch (e) {
      setActionError(errorText(e));
    }
  };

  if (loaded.state === 'loading') return <Spinner label="Opening the sandbox" />;
  if (loaded.state === 'error' || !sb)
    return (
      <main class="page narrow">
        <h1>Playground</h1>
        <ErrorMessage message={loaded.state === 'error' ? loaded.message : 'The sandbox could not be loaded.'} retry={loaded.state === 'error' && loaded.status === 404 ? undefined : () => load(true)} />
        <p>
          <a href="/playground">Back to the playground</a>
        </p>
      </main>
    );

  const lowTime = !expired && left < 5 * 60_000;
  const ownerLabel = sb.owner === null ? 'the warm pool' : `${ownerName ?? sb.owner}’s`;

  return (
    <main class="pg-ide">
      <header class="pg-head">
        <div class="pg-title">
          <h1>
            <span class="sr-label">Playground </span>
            <code data-testid="playground-id">{sb.id}</code>
          </h1>
          <span class="badge" title="Image">
            {sb.image}
          </span>
          <span class="muted pg-limits">
            {sb.limits.memory} · {sb.limits.cpus} CPU · network {sb.limits.network}
          </span>
        </div>
        <div class="row pg-actions">
          {expired ? (
            <span class="badge bad">Expired</span>
          ) : (
            <span class={`pg-timer${lowTime ? ' low' : ''}`} data-testid="playground-timer" title="Time left before the sandbox is removed">
              {left > 0 ? (
                <>
                  <span class="pg-num">{clock(left)}</span> left
                </>
              ) : (
                'Expiring…'
              )}
            </span>
          )}
          <button
            type="button"
            class="secondary small"
            data-testid="extend-playground"
            onClick={extend}
            disabled={extending || !!expired}
            title="Adds 30 minutes to the time left"
          >
            {extending ? 'Extending…' : 'Add 30 min'}
          </button>
          <ConfirmButton class="danger small" testid="stop-playground" onConfirm={stop} confirm="Click again to stop" disabled={!!expired}>
            Stop
          </ConfirmButton>
          <a class="button secondary small" href="/playground">
            All sandboxes
          </a>
        </div>
      </header>
      {foreign && (
        <div class="notice" role="status" data-testid="admin-notice">
          {sb.owner === null
            ? 'This sandbox is in the warm pool; you are in it as an admin with a shell of your own.'
            : `You are in ${ownerLabel} sandbox as an admin; this shell is your own, the owner’s terminal is not touched.`}
        </div>
      )}
      {actionError && <ErrorMessage message={actionError} />}
      {actionNote && (
        <div class="notice" role="status">
          {actionNote}
        </div>
      )}
      {expired && (
        <div class="notice" role="status" data-testid="playground-expired">
          {expired} <a href="/playground">Start a new playground</a>.
        </div>
      )}

      {!expired && (
        <section class="pg-ports" aria-label="Ports">
          <h2 class="pg-ports-title">Ports</h2>
          <PortList ports={ports[id]} onOpen={(p) => bench.current?.openPort(NODE, p)} onShare={setSharing} />
        </section>
      )}
      {sharing !== null && <ShareDialog sandbox={id} port={sharing} what={`port ${sharing}`} onClose={() => setSharing(null)} />}

      <div class="pg-work">
        <FilePanes sandbox={id} gone={!!expired} />
        <section class="pg-pane pg-term-pane" aria-label="Terminal and ports">
          <Workbench
            // Kept per user: an admin's tabs must not bring back the owner's terminal.
            storeAs={`${id}.${props.user.id}`}
            nodes={[{ name: NODE, sandbox: id }]}
            initial={TERMINAL}
            ports={ports}
            control={bench}
            // Someone else's sandbox: a shell of one's own, never the owner's `main`.
            terminalName={foreign ? 'admin' : 'main'}
            terminalTitle={() => 'Terminal'}
            editors={false}
            label="Tabs"
          />
        </section>
      </div>
    </main>
  );
}
