// A browser terminal into a sandbox: xterm.js over the server's terminal WebSocket.
//
// Protocol (crates/sandlab-server/src/terminal): binary frames are terminal bytes both
// ways, text frames are JSON control (only `resize`). On every (re)attach the server
// first replays the scrollback, so the screen is reset before it. Close codes: 1000 the
// shell exited or the sandbox closed (no automatic reconnect), 4001 another client took
// the terminal (no automatic reconnect), anything else reconnects with backoff.
//
// Keyboard: Ctrl+Shift+C / Ctrl+Insert copy, Ctrl+C copies when text is selected (else
// sends ^C), Ctrl+V / Ctrl+Shift+V / Shift+Insert paste, right-click opens a small
// Copy/Paste menu (Shift+right-click gives the browser's own). Esc then Tab moves the
// focus out of the terminal (Tab alone goes to the shell for completion).
import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { Terminal as XTerm, type ITheme } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useEffect, useRef, useState } from 'preact/hooks';

import { api, ApiError } from '../api';
import { useTheme, type Theme } from '../theme';
import './Terminal.css';

export interface TerminalHandle {
  /** Types `text` into the terminal as if the learner had (bytes to the shell's stdin). */
  send(text: string): void;
  focus(): void;
}

export interface TerminalProps {
  sandbox: string;
  /** Terminal name on the server (default `main`). */
  name?: string;
  /** Node name shown in status text and `data-node`. */
  node?: string;
  /** Whether this terminal is the visible tab (hidden ones keep their connection). */
  active?: boolean;
  onHandle?: (h: TerminalHandle | null) => void;
}

type Status = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'displaced';

interface View {
  status: Status;
  /** The sentence shown over the terminal (empty while open). */
  message: string;
  /** Whether the closed terminal can be started again (the sandbox still runs). */
  canRestart: boolean;
}

const LIGHT: ITheme = {
  background: '#fbfbfc',
  foreground: '#1b1f24',
  cursor: '#1b1f24',
  cursorAccent: '#fbfbfc',
  selectionBackground: '#b6cdfa',
  selectionInactiveBackground: '#d5e0f5',
  black: '#24292f',
  red: '#c4262e',
  green: '#116329',
  yellow: '#7d4e00',
  blue: '#0550ae',
  magenta: '#8250df',
  cyan: '#1b7c83',
  white: '#6e7781',
  brightBlack: '#57606a',
  brightRed: '#a40e26',
  brightGreen: '#1a7f37',
  brightYellow: '#633c01',
  brightBlue: '#218bff',
  brightMagenta: '#a475f9',
  brightCyan: '#3192aa',
  brightWhite: '#8c959f',
};

const DARK: ITheme = {
  background: '#0f1115',
  foreground: '#d8dde3',
  cursor: '#e6e8eb',
  cursorAccent: '#0f1115',
  selectionBackground: '#3a4e78',
  selectionInactiveBackground: '#2c3547',
  black: '#484f58',
  red: '#ff7b72',
  green: '#3fb950',
  yellow: '#d29922',
  blue: '#58a6ff',
  magenta: '#bc8cff',
  cyan: '#39c5cf',
  white: '#b1bac4',
  brightBlack: '#6e7681',
  brightRed: '#ffa198',
  brightGreen: '#56d364',
  brightYellow: '#e3b341',
  brightBlue: '#79c0ff',
  brightMagenta: '#d2a8ff',
  brightCyan: '#56d4dd',
  brightWhite: '#f0f6fc',
};

const xtermTheme = (t: Theme) => (t === 'dark' ? DARK : LIGHT);

/** Largest piece of input sent in one frame (the server takes at most 64 KiB). */
const INPUT_CHUNK_CHARS = 16 * 1024;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 5000;

const HELP =
  'Terminal. Ctrl+Shift+C copies, Ctrl+Shift+V pastes (Ctrl+C copies when text is selected), right-click for Copy/Paste. ' +
  'Tab completes in the shell; press Esc then Tab to move the focus out of the terminal.';

/** Copies `text` to the clipboard; falls back to execCommand where the Clipboard API is
 * missing (plain-http pages that are not localhost). */
export async function copyText(text: string): Promise<boolean> {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      /* not allowed (e.g. the document lost focus): try the old way */
    }
  }
  return legacyCopy(text);
}

function legacyCopy(text: string): boolean {
  const prev = document.activeElement as HTMLElement | null;
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.setAttribute('aria-hidden', 'true');
  ta.style.cssText = 'position:fixed;top:0;left:-9999px;opacity:0;';
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  prev?.focus?.();
  return ok;
}

/** The element that Tab (or Shift+Tab) would reach from outside `from`. */
function focusOutside(from: HTMLElement, backwards: boolean): void {
  const all = Array.from(
    document.querySelectorAll<HTMLElement>(
      'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])',
    ),
  ).filter((el) => !from.contains(el) && el.offsetParent !== null);
  const after = all.filter((el) => from.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING);
  const before = all.filter((el) => from.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_PRECEDING);
  const target = backwards ? before[before.length - 1] : after[0];
  (target ?? (backwards ? all[all.length - 1] : all[0]))?.focus();
}

export function Terminal(props: TerminalProps) {
  const name = props.name ?? 'main';
  const active = props.active ?? true;
  const theme = useTheme();
  const boxRef = useRef<HTMLDivElement>(null);
  const hostRef = useRef<HTMLDivElement>(null);
  const [view, setView] = useState<View>({ status: 'connecting', message: '', canRestart: false });
  const [menu, setMenu] = useState<{ x: number; y: number; selection: boolean } | null>(null);
  const [note, setNote] = useState('');
  // Filled by the effect below: what the buttons and the other effects call.
  const ctl = useRef<{
    term: XTerm;
    fit: () => void;
    reconnect: () => void;
    paste: () => void;
    copySelection: () => void;
  } | null>(null);
  const onHandle = useRef(props.onHandle);
  onHandle.current = props.onHandle;

  useEffect(() => {
    const box = boxRef.current!;
    const host = hostRef.current!;
    const term = new XTerm({
      fontFamily: "ui-monospace, 'DejaVu Sans Mono', 'Liberation Mono', Menlo, Consolas, monospace",
      fontSize: 14,
      lineHeight: 1.15,
      cursorBlink: true,
      scrollback: 5000,
      theme: xtermTheme(theme),
      allowProposedApi: false,
      macOptionIsMeta: true,
      rightClickSelectsWord: false,
    });
    const fitAddon = new FitAddon();
    term.loadAddon(fitAddon);
    term.loadAddon(new WebLinksAddon());
    term.open(host);
    (box as any).sandlabTerm = term;

    const enc = new TextEncoder();
    let ws: WebSocket | null = null;
    let disposed = false;
    let attempt = 0;
    let retryTimer = 0;
    let resizeTimer = 0;
    let noteTimer = 0;
    let pasteTimer = 0;
    let sent = { cols: 0, rows: 0 };
    let pending: Uint8Array[] = [];
    let escArmed = false;

    const show = (v: View) => {
      if (!disposed) setView(v);
    };
    const flash = (text: string) => {
      setNote(text);
      clearTimeout(noteTimer);
      noteTimer = window.setTimeout(() => setNote(''), 1800);
    };

    const sendBytes = (bytes: Uint8Array) => {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(bytes);
      else if (pending.length < 64) pending.push(bytes);
    };
    const sendText = (text: string) => {
      for (let i = 0; i < text.length; ) {
        let end = Math.min(text.length, i + INPUT_CHUNK_CHARS);
        // Never split a surrogate pair between two frames.
        if (end < text.length && /[\ud800-\udbff]/.test(text[end - 1])) end--;
        sendBytes(enc.encode(text.slice(i, end)));
        i = end;
      }
    };
    const sendSize = () => {
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      if (term.cols === sent.cols && term.rows === sent.rows) return;
      sent = { cols: term.cols, rows: term.rows };
      ws.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
    };
    const fit = () => {
      if (disposed || host.offsetWidth === 0 || host.offsetHeight === 0) return;
      try {
        fitAddon.fit();
      } catch {
        /* not laid out yet */
      }
    };

    const connect = () => {
      clearTimeout(retryTimer);
      if (disposed) return;
      fit();
      const cols = term.cols;
      const rows = term.rows;
      const socket = new WebSocket(`${api.terminalUrl(props.sandbox, name)}&cols=${cols}&rows=${rows}`);
      socket.binaryType = 'arraybuffer';
      ws = socket;
      let opened = false;
      socket.onopen = () => {
        if (ws !== socket) return;
        opened = true;
        attempt = 0;
        sent = { cols, rows };
        // The server replays the scrollback next: start from a clean screen.
        term.reset();
        show({ status: 'open', message: '', canRestart: false });
        for (const b of pending) socket.send(b);
        pending = [];
        sendSize();
      };
      socket.onmessage = (ev) => {
        if (ws !== socket) return;
        if (ev.data instanceof ArrayBuffer) term.write(new Uint8Array(ev.data));
      };
      socket.onclose = (ev) => {
        if (ws !== socket || disposed) return;
        ws = null;
        if (ev.code === 4001) {
          show({ status: 'displaced', message: 'This terminal was opened in another tab or window.', canRestart: true });
          return;
        }
        if (ev.code === 1000) {
          closedOrGone('The shell has exited.');
          return;
        }
        if (!opened && attempt >= 1) {
          // The upgrade keeps failing: find out whether the sandbox is still there.
          checkSandbox();
          return;
        }
        scheduleRetry();
      };
    };

    const scheduleRetry = () => {
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
      attempt++;
      show({
        status: 'reconnecting',
        message: `The connection to ${props.node ?? 'the sandbox'} dropped; reconnecting…`,
        canRestart: true,
      });
      retryTimer = window.setTimeout(connect, delay);
    };

    const checkSandbox = () => {
      api
        .sandbox(props.sandbox)
        .then((sb) => {
          if (disposed) return;
          if (sb.state === 'running') scheduleRetry();
          else show({ status: 'closed', message: `The sandbox is ${sb.state}; its terminal is closed.`, canRestart: false });
        })
        .catch((e) => {
          if (disposed) return;
          if (e instanceof ApiError && (e.status === 404 || e.status === 403))
            show({ status: 'closed', message: 'The sandbox has been removed; its terminal is closed.', canRestart: false });
          else scheduleRetry();
        });
    };

    const closedOrGone = (shellExited: string) => {
      show({ status: 'closed', message: shellExited, canRestart: true });
      api
        .sandbox(props.sandbox)
        .then((sb) => {
          if (sb.state !== 'running')
            show({ status: 'closed', message: `The sandbox is ${sb.state}; its terminal is closed.`, canRestart: false });
        })
        .catch((e) => {
          if (e instanceof ApiError && (e.status === 404 || e.status === 403))
            show({ status: 'closed', message: 'The sandbox has been removed; its terminal is closed.', canRestart: false });
        });
    };

    const reconnect = () => {
      if (ws) {
        const old = ws;
        ws = null;
        old.close();
      }
      attempt = 0;
      show({ status: 'connecting', message: '', canRestart: false });
      connect();
      term.focus();
    };

    const copySelection = () => {
      const text = term.getSelection();
      if (!text) return;
      copyText(text).then((ok) => flash(ok ? 'Copied' : 'Copy failed; use the browser menu (Shift+right-click).'));
    };
    const paste = () => {
      if (!navigator.clipboard?.readText) {
        flash('Press Ctrl+Shift+V to paste here.');
        return;
      }
      navigator.clipboard
        .readText()
        .then((text) => {
          if (text) term.paste(text);
          term.focus();
        })
        .catch(() => flash('The browser did not allow reading the clipboard; press Ctrl+Shift+V.'));
    };

    term.attachCustomKeyEventHandler((e) => {
      if (e.type !== 'keydown') return true;
      const key = e.key.toLowerCase();
      if (escArmed && e.key === 'Tab' && !e.ctrlKey && !e.altKey && !e.metaKey) {
        escArmed = false;
        e.preventDefault();
        focusOutside(box, e.shiftKey);
        return false;
      }
      escArmed = e.key === 'Escape';
      const ctrl = e.ctrlKey && !e.altKey && !e.metaKey;
      // Copy: Ctrl+Shift+C, Ctrl+Insert, Ctrl+C with a selection (and Cmd+C on a Mac).
      if (
        (ctrl && e.shiftKey && key === 'c') ||
        (ctrl && !e.shiftKey && e.key === 'Insert') ||
        (((ctrl && !e.shiftKey) || (e.metaKey && !e.ctrlKey)) && key === 'c' && term.hasSelection())
      ) {
        e.preventDefault();
        copySelection();
        if (!e.shiftKey && e.key !== 'Insert') term.clearSelection();
        return false;
      }
      if (ctrl && e.shiftKey && key === 'c') {
        e.preventDefault(); // nothing selected: at least keep the browser's inspector shut
        return false;
      }
      // Paste: let the browser deliver its own paste event (xterm turns it into
      // term.paste, with bracketed paste); if none arrives, read the clipboard.
      if (
        (ctrl && key === 'v') ||
        (e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && e.key === 'Insert') ||
        (e.metaKey && !e.ctrlKey && key === 'v')
      ) {
        clearTimeout(pasteTimer);
        pasteTimer = window.setTimeout(() => {
          pasteTimer = 0;
          if (typeof navigator.clipboard?.readText === 'function') paste();
        }, 150);
        return false;
      }
      return true;
    });
    const onNativePaste = () => {
      clearTimeout(pasteTimer);
      pasteTimer = 0;
    };
    box.addEventListener('paste', onNativePaste, true);

    term.onData((d) => sendText(d));
    term.onBinary((d) => {
      const b = new Uint8Array(d.length);
      for (let i = 0; i < d.length; i++) b[i] = d.charCodeAt(i) & 0xff;
      sendBytes(b);
    });
    term.onResize(() => {
      clearTimeout(resizeTimer);
      resizeTimer = window.setTimeout(sendSize, 120);
    });

    let fitTimer = 0;
    const ro = new ResizeObserver(() => {
      clearTimeout(fitTimer);
      fitTimer = window.setTimeout(fit, 50);
    });
    ro.observe(host);

    ctl.current = { term, fit, reconnect, paste, copySelection };
    onHandle.current?.({
      send: (text: string) => sendText(text),
      focus: () => term.focus(),
    });
    connect();

    return () => {
      disposed = true;
      onHandle.current?.(null);
      ctl.current = null;
      clearTimeout(retryTimer);
      clearTimeout(resizeTimer);
      clearTimeout(noteTimer);
      clearTimeout(pasteTimer);
      clearTimeout(fitTimer);
      ro.disconnect();
      box.removeEventListener('paste', onNativePaste, true);
      if (ws) {
        const s = ws;
        ws = null;
        s.close(1000);
      }
      delete (box as any).sandlabTerm;
      term.dispose();
    };
    // The theme is applied by its own effect; a new sandbox or name is a new terminal.
  }, [props.sandbox, name]);

  useEffect(() => {
    const c = ctl.current;
    if (!c) return;
    c.term.options.theme = xtermTheme(theme);
  }, [theme]);

  useEffect(() => {
    if (!active) return;
    const id = requestAnimationFrame(() => ctl.current?.fit());
    return () => cancelAnimationFrame(id);
  }, [active]);

  useEffect(() => {
    if (!menu) return;
    const close = () => setMenu(null);
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && close();
    window.addEventListener('pointerdown', close);
    window.addEventListener('keydown', onKey);
    window.addEventListener('blur', close);
    return () => {
      window.removeEventListener('pointerdown', close);
      window.removeEventListener('keydown', onKey);
      window.removeEventListener('blur', close);
    };
  }, [menu]);

  const onContextMenu = (e: MouseEvent) => {
    if (e.shiftKey) return; // the browser's own menu
    e.preventDefault();
    const r = boxRef.current!.getBoundingClientRect();
    setMenu({
      x: Math.min(e.clientX - r.left, r.width - 170),
      y: Math.min(e.clientY - r.top, r.height - 90),
      selection: !!ctl.current?.term.hasSelection(),
    });
  };

  const who = props.node ? `the ${props.node} terminal` : 'the terminal';
  const bg = xtermTheme(theme).background;
  return (
    <div
      ref={boxRef}
      class={`term${active ? '' : ' term-hidden'}`}
      style={{ background: bg }}
      data-testid="terminal"
      data-node={props.node}
      data-sandbox={props.sandbox}
      data-name={name}
      data-status={view.status}
      title={HELP}
      aria-label={props.node ? `Terminal of ${props.node}` : 'Terminal'}
      onContextMenu={onContextMenu}
    >
      <div ref={hostRef} class="term-host" />
      {view.status !== 'open' && (
        <div class={`term-overlay term-${view.status}`} role="status" aria-live="polite">
          {(view.status === 'connecting' || view.status === 'reconnecting') && <span class="spinner-dot" aria-hidden="true" />}
          <span>
            {view.status === 'connecting' ? `Connecting to ${who}…` : view.message}
          </span>
          {view.status === 'reconnecting' && (
            <button type="button" class="small secondary" onClick={() => ctl.current?.reconnect()}>
              Reconnect now
            </button>
          )}
          {view.status === 'closed' && view.canRestart && (
            <button type="button" class="small" onClick={() => ctl.current?.reconnect()}>
              Start a new shell
            </button>
          )}
          {view.status === 'displaced' && (
            <button type="button" class="small" onClick={() => ctl.current?.reconnect()}>
              Use it here
            </button>
          )}
        </div>
      )}
      {note && (
        <div class="term-note" role="status">
          {note}
        </div>
      )}
      {menu && (
        <div
          class="term-menu"
          role="menu"
          style={{ left: `${Math.max(0, menu.x)}px`, top: `${Math.max(0, menu.y)}px` }}
          onPointerDown={(e) => e.stopPropagation()}
        >
          <button
            type="button"
            role="menuitem"
            class="ghost small"
            disabled={!menu.selection}
            onClick={() => {
              ctl.current?.copySelection();
              setMenu(null);
              ctl.current?.term.focus();
            }}
          >
            Copy <kbd>Ctrl+Shift+C</kbd>
          </button>
          <button
            type="button"
            role="menuitem"
            class="ghost small"
            ref={(b) => b?.focus()}
            onClick={() => {
              setMenu(null);
              ctl.current?.paste();
            }}
          >
            Paste <kbd>Ctrl+Shift+V</kbd>
          </button>
        </div>
      )}
    </div>
  );
}
