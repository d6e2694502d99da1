// The terminal's WebSocket and its reconnect state machine.
//
// Protocol (crates/sandlab-server/src/terminal): binary frames are terminal bytes both
// ways, text frames are JSON control (only `resize`). On every (re)attach the server
// first replays the scrollback, so the caller resets the screen in `onOpen`. Close codes:
// 1000 the shell exited or the sandbox closed (no automatic reconnect), 4001 another
// client took the terminal (no automatic reconnect), anything else reconnects with a
// backoff (0.5 s doubling to 5 s).
//
// The backoff starts over only once a connection has stayed up for STABLE_MS: a socket
// that opens and drops at once (1011, the sandbox's agent is gone) keeps backing off
// instead of reconnecting (and clearing the screen) every half second. After a few such
// failures in a row the API is asked whether the sandbox still exists; if it does not,
// the terminal closes with a sentence saying so.
//
// Input typed while (re)connecting is queued and sent when the socket opens, unless it
// is older than PENDING_MAX_AGE_MS; input typed while the terminal is closed or
// displaced is dropped, so it never lands in a shell the learner did not see.
import { api, ApiError } from '../../api';

export type Status = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'displaced';

export interface View {
  status: Status;
  /** The sentence shown over the terminal (empty while open). */
  message: string;
  /** Whether the closed terminal can be started again (the sandbox still runs). */
  canRestart: boolean;
}

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 5000;
/** A connection that stays open this long counts as working: the backoff starts over. */
const STABLE_MS = 3000;
/** Failed connections in a row after which the sandbox is looked up (and again every as many). */
const FAILURES_BEFORE_CHECK = 5;
const PENDING_MAX_AGE_MS = 10_000;
const PENDING_MAX_FRAMES = 64;

export interface ConnectionOptions {
  sandbox: string;
  /** Terminal name on the server. */
  name: string;
  /** Node name for the status sentences. */
  node?: string;
  /** The terminal's size now (sent with every connection). */
  size(): { cols: number; rows: number };
  /** A socket opened: the server replays the scrollback next, so clear the screen. */
  onOpen(): void;
  onOutput(bytes: Uint8Array): void;
  onView(view: View): void;
}

export interface Connection {
  /** Sends input bytes (queued while connecting, dropped while closed). */
  send(bytes: Uint8Array): void;
  /** Tells the server the terminal's size (when it changed). */
  resize(cols: number, rows: number): void;
  /** Connects again now, forgetting queued input and the backoff. */
  reconnect(): void;
  dispose(): void;
}

const removed = (e: unknown) => e instanceof ApiError && (e.status === 404 || e.status === 403);

export function connectTerminal(o: ConnectionOptions): Connection {
  let ws: WebSocket | null = null;
  let disposed = false;
  let status: Status = 'connecting';
  /** Position in the backoff sequence. */
  let attempt = 0;
  /** Connections in a row that failed or dropped before STABLE_MS. */
  let failures = 0;
  let retryTimer = 0;
  let stableTimer = 0;
  /** Bumped by every connect: answers to older sandbox look-ups are ignored. */
  let generation = 0;
  let sent = { cols: 0, rows: 0 };
  let pending: { at: number; bytes: Uint8Array }[] = [];

  const show = (v: View) => {
    if (disposed) return;
    status = v.status;
    if (status === 'closed' || status === 'displaced') pending = [];
    o.onView(v);
  };
  const reconnecting = () =>
    show({
      status: 'reconnecting',
      message: `The connection to ${o.node ?? 'the sandbox'} dropped; reconnecting…`,
      canRestart: true,
    });
  const sandboxClosed = (state: string) =>
    show({ status: 'closed', message: `The sandbox is ${state}; its terminal is closed.`, canRestart: false });
  const sandboxRemoved = () =>
    show({ status: 'closed', message: 'The sandbox has been removed; its terminal is closed.', canRestart: false });

  const send = (bytes: Uint8Array) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(bytes);
    else if ((status === 'connecting' || status === 'reconnecting') && pending.length < PENDING_MAX_FRAMES)
      pending.push({ at: Date.now(), bytes });
  };

  const resize = (cols: number, rows: number) => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (cols === sent.cols && rows === sent.rows) return;
    sent = { cols, rows };
    ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  };

  const connect = () => {
    clearTimeout(retryTimer);
    if (disposed) return;
    generation++;
    const { cols, rows } = o.size();
    const socket = new WebSocket(`${api.terminalUrl(o.sandbox, o.name)}&cols=${cols}&rows=${rows}`);
    socket.binaryType = 'arraybuffer';
    ws = socket;
    let opened = false;
    socket.onopen = () => {
      if (ws !== socket) return;
      opened = true;
      sent = { cols, rows };
      clearTimeout(stableTimer);
      stableTimer = window.setTimeout(() => {
        attempt = 0;
        failures = 0;
      }, STABLE_MS);
      o.onOpen();
      show({ status: 'open', message: '', canRestart: false });
      const oldest = Date.now() - PENDING_MAX_AGE_MS;
      for (const p of pending) if (p.at >= oldest) socket.send(p.bytes);
      pending = [];
      const now = o.size();
      resize(now.cols, now.rows);
    };
    socket.onmessage = (ev) => {
      if (ws === socket && ev.data instanceof ArrayBuffer) o.onOutput(new Uint8Array(ev.data));
    };
    socket.onclose = (ev) => {
      if (ws !== socket || disposed) return;
      ws = null;
      clearTimeout(stableTimer);
      if (ev.code === 4001) {
        show({ status: 'displaced', message: 'This terminal was opened in another tab or window.', canRestart: true });
        return;
      }
      if (ev.code === 1000) {
        shellExited();
        return;
      }
      failures++;
      // The upgrade keeps failing, or the socket keeps dropping right after it opens:
      // find out whether the sandbox is still there.
      if ((!opened && failures >= 2) || failures % FAILURES_BEFORE_CHECK === 0) checkSandbox();
      else scheduleRetry();
    };
  };

  const scheduleRetry = () => {
    clearTimeout(retryTimer);
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
    attempt = Math.min(attempt + 1, 16);
    reconnecting();
    retryTimer = window.setTimeout(connect, delay);
  };

  const checkSandbox = () => {
    const gen = generation;
    reconnecting();
    api
      .sandbox(o.sandbox)
      .then((sb) => {
        if (disposed || gen !== generation || status !== 'reconnecting') return;
        if (sb.state === 'running') scheduleRetry();
        else sandboxClosed(sb.state);
      })
      .catch((e) => {
        if (disposed || gen !== generation || status !== 'reconnecting') return;
        if (removed(e)) sandboxRemoved();
        else scheduleRetry();
      });
  };

  const shellExited = () => {
    const gen = generation;
    show({ status: 'closed', message: 'The shell has exited.', canRestart: true });
    api
      .sandbox(o.sandbox)
      .then((sb) => {
        if (!disposed && gen === generation && status === 'closed' && sb.state !== 'running') sandboxClosed(sb.state);
      })
      .catch((e) => {
        if (!disposed && gen === generation && status === 'closed' && removed(e)) sandboxRemoved();
      });
  };

  const reconnect = () => {
    clearTimeout(retryTimer);
    clearTimeout(stableTimer);
    if (ws) {
      const old = ws;
      ws = null;
      old.close();
    }
    pending = [];
    attempt = 0;
    failures = 0;
    show({ status: 'connecting', message: '', canRestart: false });
    connect();
  };

  const dispose = () => {
    disposed = true;
    clearTimeout(retryTimer);
    clearTimeout(stableTimer);
    pending = [];
    if (ws) {
      const s = ws;
      ws = null;
      s.close(1000);
    }
  };

  connect();
  return { send, resize, reconnect, dispose };
}
