// The tabs beside a lab's text (and a playground's terminal pane): terminals, services (a
// port through the proxy), editors (a file tree and editor rooted at a folder) and
// websites. The lab's tabs come first; the learner opens more with "+" and closes any; the
// open tabs, their order and the active one are kept in localStorage per session
// (lib/tabs.ts), so a reload shows the same and its terminals reattach to the same shells.
//
// Terminal tabs are all mounted at once (each keeps its connection, as before tabs); the
// others mount the first time they are shown and stay mounted while open. The page drives
// it through `control`: Run types into a node's terminal tab (opening one when it was
// closed), a port link opens or shows a service tab.
import type { MutableRef } from 'preact/hooks';
import { useEffect, useId, useRef, useState } from 'preact/hooks';

import type { Tab } from '../../api';
import {
  addTab,
  closeTab,
  fromLab,
  loadTabs,
  nextTerminalName,
  normalPath,
  saveTabs,
  serviceOf,
  terminalOf,
  uniqueTitle,
  updateTab,
  validPort,
  type OpenTab,
  type TabsState,
} from '../../lib/tabs';
import { FilePanes } from '../FilePanes';
import { ServiceView } from '../ports/ServiceView';
import type { Ports } from '../ports/usePorts';
import { Terminal, type TerminalHandle } from '../Terminal';
import { OpenTabMenu, type MenuNode } from './OpenTabMenu';
import { panelId, TabBar, tabId } from './TabBar';
import { WebsiteView } from './WebsiteView';
import './Tabs.css';

export interface WorkbenchControl {
  /** Types `command` into `node`'s terminal tab, activating it (opening one if closed). */
  run(command: string, node: string): void;
  /** Shows `port` of `node` (default: the first node) on `path` in a service tab. */
  openPort(node: string | null, port: number, path?: string | null): void;
  /** Opens the "+" menu at the detected ports. */
  pickPort(): void;
}

export interface WorkbenchProps {
  /** Where the open tabs are kept: a session or sandbox id. */
  storeAs: string;
  nodes: MenuNode[];
  /** The tabs to start with when none are kept (none: a terminal per node). */
  initial: Tab[];
  /** The detected ports, by sandbox id. */
  ports: Record<string, Ports>;
  control?: MutableRef<WorkbenchControl | null>;
  /** The server name of a node's first terminal (default `main`). */
  terminalName?: string;
  /** The title of a new terminal tab of `node` (default: the node's name). */
  terminalTitle?: (node: string) => string;
  /** Offer editor tabs in the "+" menu. */
  editors: boolean;
  /** The tab list's label. */
  label: string;
}

export function Workbench(props: WorkbenchProps) {
  const prefix = `wb${useId().replace(/[^a-zA-Z0-9]/g, '')}`;
  const base = props.terminalName ?? 'main';
  const names = props.nodes.map((n) => n.name);
  const multi = names.length > 1;
  const [state, setStateRaw] = useState<TabsState>(() => loadTabs(props.storeAs, names, () => fromLab(props.initial, names, base)));
  // The state as of the last change, for the actions called from outside between renders.
  const current = useRef(state);
  const setState = (s: TabsState) => {
    current.current = s;
    setStateRaw(s);
  };
  const [menu, setMenu] = useState<null | 'all' | 'ports'>(null);
  const root = useRef<HTMLDivElement>(null);
  const plus = useRef<HTMLDivElement>(null);
  const handles = useRef(new Map<string, TerminalHandle>());
  // Run's text for a terminal tab whose terminal is not there yet.
  const pending = useRef<{ key: string; text: string } | null>(null);
  const focusedOnce = useRef(false);
  // Tabs shown at least once (mounted from then on).
  const shown = useRef(new Set<string>());
  shown.current.add(state.active);

  useEffect(() => saveTabs(props.storeAs, state), [state]);

  const sandboxOf = (node: string | null) => props.nodes.find((n) => n.name === node)?.sandbox ?? null;
  const onWhat = (node: string | null) => (multi && node ? ` of ${node}` : '');

  const open = (tab: Omit<OpenTab, 'key' | 'title'>, title: string) =>
    addTab(current.current, { ...tab, title: uniqueTitle(current.current.tabs, title) });

  const openTerminal = (node: string) => {
    const s = current.current;
    const r = open(
      { kind: 'terminal', node, port: null, path: null, url: null, terminal: nextTerminalName(s.tabs, node, base) },
      props.terminalTitle?.(node) ?? node,
    );
    setState(r.state);
    return r.key;
  };
  const openEditor = (node: string) =>
    setState(open({ kind: 'editor', node, port: null, path: '/root', url: null, terminal: null }, multi ? `Editor (${node})` : 'Editor').state);

  const openPort = (node: string | null, port: number, path?: string | null) => {
    const n = node ?? names[0];
    if (!sandboxOf(n) || !validPort(port)) return;
    setMenu(null);
    const s = current.current;
    const found = serviceOf(s, n, port, path);
    if (found) {
      const next = { ...s, active: found.key };
      setState(path && normalPath(path) !== normalPath(found.path) ? updateTab(next, found.key, { path: normalPath(path) }) : next);
    } else {
      const title = multi ? `Port ${port} (${n})` : `Port ${port}`;
      setState(open({ kind: 'service', node: n, port, path: path ? normalPath(path) : null, url: null, terminal: null }, title).state);
    }
    // Stacked below the text on a narrow screen: bring the tab into view.
    requestAnimationFrame(() => root.current?.scrollIntoView({ block: 'nearest' }));
  };

  const run = (command: string, node: string) => {
    const text = command.replace(/\r?\n/g, '\r') + '\r';
    const tab = terminalOf(current.current, node, base);
    const key = tab ? tab.key : openTerminal(node);
    if (tab) setState({ ...current.current, active: key });
    const h = handles.current.get(key);
    if (!h) return void (pending.current = { key, text });
    h.send(text);
    setTimeout(() => h.focus(), 0); // once its panel shows
  };

  if (props.control) props.control.current = { run, openPort, pickPort: () => setMenu('ports') };
  useEffect(
    () => () => {
      if (props.control) props.control.current = null;
    },
    [],
  );

  // A click elsewhere closes the menu.
  useEffect(() => {
    if (!menu) return;
    const away = (e: PointerEvent) => {
      if (!plus.current?.contains(e.target as Node)) setMenu(null);
    };
    window.addEventListener('pointerdown', away);
    return () => window.removeEventListener('pointerdown', away);
  }, [menu]);

  const terminalHandle = (t: OpenTab) => (h: TerminalHandle | null) => {
    if (!h) return void handles.current.delete(t.key);
    handles.current.set(t.key, h);
    const p = pending.current;
    if (p?.key === t.key) {
      // Queued by the terminal until its socket opens.
      pending.current = null;
      h.send(p.text);
      h.focus();
    } else if (t.key === current.current.active && !focusedOnce.current) {
      // The learner types at once: the first terminal shown takes the focus.
      focusedOnce.current = true;
      h.focus();
    }
  };

  const close = (key: string) => {
    shown.current.delete(key);
    if (pending.current?.key === key) pending.current = null;
    setState(closeTab(current.current, key));
  };

  // Detected ports no tab shows yet: a hint on the "+".
  const unseen = props.nodes.reduce((sum, n) => {
    const showing = new Set(state.tabs.filter((t) => t.kind === 'service' && t.node === n.name).map((t) => t.port));
    const ports = new Set((props.ports[n.sandbox]?.items ?? []).map((p) => p.port).filter((p) => !showing.has(p)));
    return sum + ports.size;
  }, 0);

  const content = (t: OpenTab, on: boolean) => {
    const sandbox = sandboxOf(t.node);
    if (t.kind === 'website') return t.url ? <WebsiteView url={t.url} title={t.title} /> : null;
    if (!sandbox) return null;
    if (t.kind === 'terminal')
      return <Terminal sandbox={sandbox} name={t.terminal ?? base} node={t.node ?? undefined} active={on} onHandle={terminalHandle(t)} />;
    if (t.kind === 'editor')
      return (
        <div class="tab-editor">
          <FilePanes sandbox={sandbox} root={t.path ?? '/root'} gone={false} active={on} />
        </div>
      );
    return t.port ? (
      <ServiceView
        sandbox={sandbox}
        port={t.port}
        path={t.path}
        title={t.title}
        what={`port ${t.port}${onWhat(t.node)}`}
        onPath={(path) => setState(updateTab(current.current, t.key, { path }))}
      />
    ) : null;
  };

  return (
    <div class="workbench" ref={root}>
      <TabBar
        tabs={state.tabs}
        active={state.active}
        idPrefix={prefix}
        label={props.label}
        onSelect={(key) => setState({ ...current.current, active: key })}
        onClose={close}
      >
        <div class="tab-add" ref={plus}>
          <button
            type="button"
            class="ghost small tab-add-button"
            aria-label="Open a tab"
            aria-haspopup="dialog"
            aria-expanded={!!menu}
            data-testid="open-tab"
            title={`Open a tab: ${props.editors ? 'a terminal, an editor or a port' : 'a terminal or a port'}${unseen ? ` (${unseen} port${unseen > 1 ? 's' : ''} listening)` : ''}`}
            onClick={() => setMenu(menu ? null : 'all')}
          >
            +{unseen > 0 && <span class="tab-add-count" aria-hidden="true">{unseen}</span>}
          </button>
          {menu && (
            <OpenTabMenu
              nodes={props.nodes}
              ports={props.ports}
              terminals
              editors={props.editors}
              portsFirst={menu === 'ports'}
              onTerminal={(n) => {
                setMenu(null);
                openTerminal(n);
              }}
              onEditor={(n) => {
                setMenu(null);
                openEditor(n);
              }}
              onPort={openPort}
              onClose={() => {
                setMenu(null);
                plus.current?.querySelector('button')?.focus();
              }}
            />
          )}
        </div>
      </TabBar>
      <div class="tab-stack">
        {state.tabs.map((t) => {
          const on = t.key === state.active;
          return (
            <div
              key={t.key}
              id={panelId(prefix, t.key)}
              class={`tab-panel tab-panel-${t.kind}`}
              role="tabpanel"
              aria-labelledby={tabId(prefix, t.key)}
              hidden={!on}
              data-testid="tab-panel"
              data-kind={t.kind}
            >
              {(t.kind === 'terminal' || shown.current.has(t.key)) && content(t, on)}
            </div>
          );
        })}
        {state.tabs.length === 0 && (
          <div class="tab-empty">
            <p class="muted">No tab is open. Open a terminal, an editor or a port with “+”.</p>
          </div>
        )}
      </div>
    </div>
  );
}
