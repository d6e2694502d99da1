// A browser terminal into a sandbox: xterm.js over the server's terminal WebSocket.
//
// The connection and its reconnect rules live in terminal/connection.ts, copy/paste and
// the keyboard in terminal/clipboard.ts, the colours in terminal/themes.ts. Right-click
// opens a small Copy/Paste menu (Shift+right-click gives the browser's own).
import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { Terminal as XTerm } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useEffect, useRef, useState } from 'preact/hooks';

import { useTheme } from '../theme';
import { copySelection, installKeys, pasteClipboard } from './terminal/clipboard';
import { connectTerminal, type View } from './terminal/connection';
import { xtermTheme } from './terminal/themes';
import './Terminal.css';

export { copyText } from './terminal/clipboard';

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

/** Largest piece of input sent in one frame (the server takes at most 64 KiB). */
const INPUT_CHUNK_CHARS = 16 * 1024;

const HELP =
  'Terminal. Ctrl+Shift+C copies, Ctrl+Shift+V pastes (Ctrl+C copies when text is selected), right-click for Copy/Paste. ' +
  'Tab completes in the shell; press Esc then Tab to move the focus out of the terminal.';

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

    let disposed = false;
    let resizeTimer = 0;
    let noteTimer = 0;
    let fitTimer = 0;

    const flash = (text: string) => {
      setNote(text);
      clearTimeout(noteTimer);
      noteTimer = window.setTimeout(() => setNote(''), 1800);
    };
    const fit = () => {
      if (disposed || host.offsetWidth === 0 || host.offsetHeight === 0) return;
      try {
        fitAddon.fit();
      } catch {
        /* not laid out yet */
      }
    };

    const conn = connectTerminal({
      sandbox: props.sandbox,
      name,
      node: props.node,
      size: () => {
        fit();
        return { cols: term.cols, rows: term.rows };
      },
      // The server replays the scrollback next: start from a clean screen.
      onOpen: () => term.reset(),
      onOutput: (bytes) => term.write(bytes),
      onView: (v) => {
        if (!disposed) setView(v);
      },
    });

    const enc = new TextEncoder();
    const sendText = (text: string) => {
      for (let i = 0; i < text.length; ) {
        let end = Math.min(text.length, i + INPUT_CHUNK_CHARS);
        // Never split a surrogate pair between two frames.
        if (end < text.length && /[\ud800-\udbff]/.test(text[end - 1])) end--;
        conn.send(enc.encode(text.slice(i, end)));
        i = end;
      }
    };

    const removeKeys = installKeys(term, box, flash);
    term.onData((d) => sendText(d));
    term.onBinary((d) => {
      const b = new Uint8Array(d.length);
      for (let i = 0; i < d.length; i++) b[i] = d.charCodeAt(i) & 0xff;
      conn.send(b);
    });
    term.onResize(() => {
      clearTimeout(resizeTimer);
      resizeTimer = window.setTimeout(() => conn.resize(term.cols, term.rows), 120);
    });

    const ro = new ResizeObserver(() => {
      clearTimeout(fitTimer);
      fitTimer = window.setTimeout(fit, 50);
    });
    ro.observe(host);

    ctl.current = {
      term,
      fit,
      reconnect: () => {
        conn.reconnect();
        term.focus();
      },
      paste: () => pasteClipboard(term, flash),
      copySelection: () => copySelection(term, flash),
    };
    onHandle.current?.({
      send: (text: string) => sendText(text),
      focus: () => term.focus(),
    });

    return () => {
      disposed = true;
      onHandle.current?.(null);
      ctl.current = null;
      clearTimeout(resizeTimer);
      clearTimeout(noteTimer);
      clearTimeout(fitTimer);
      ro.disconnect();
      removeKeys();
      conn.dispose();
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
