// The tabs of a workbench (a lab session's right side, a playground's right pane): which
// are open, in which order, which one is active. Pure functions over `TabsState`, and its
// copy in localStorage (per session or sandbox) so that a reload shows the same tabs.
// The component that holds the state is components/tabs/Workbench.tsx.
import type { Tab, TabKind } from '../api';

export interface OpenTab {
  /** Unique among the open tabs and safe in an element id (`t1`, `t2`, …). */
  key: string;
  kind: TabKind;
  node: string | null;
  port: number | null;
  path: string | null;
  url: string | null;
  title: string;
  /** A terminal tab's terminal name on the server (`main`, `main-2`, …): the first
   * terminal of a node is the one it always had, so a reload reattaches to it. */
  terminal: string | null;
}

export interface TabsState {
  tabs: OpenTab[];
  /** The key of the active tab ('' when none is open). */
  active: string;
}

/** A tab to open: everything but the key, which `addTab` picks. */
export type NewTab = Omit<OpenTab, 'key'>;

const KINDS: TabKind[] = ['terminal', 'service', 'editor', 'website'];
const KEY = /^t\d{1,9}$/;
const TERMINAL_NAME = /^[a-z0-9_-]{1,32}$/;
const MAX_TABS = 40;
const MAX_TITLE = 80;

/** `/x` for `x`, `/` for nothing. */
export function normalPath(p: string | null | undefined): string {
  const t = (p ?? '').trim();
  return t.startsWith('/') ? t : `/${t}`;
}

/** Whether `u` is an absolute http(s) URL (the only kind a website tab shows). */
export function isWebUrl(u: string | null | undefined): u is string {
  if (!u) return false;
  try {
    const p = new URL(u).protocol;
    return p === 'http:' || p === 'https:';
  } catch {
    return false;
  }
}

export function validPort(p: unknown): p is number {
  return typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;
}

function nextKey(tabs: OpenTab[]): string {
  const n = tabs.reduce((m, t) => Math.max(m, Number(t.key.slice(1)) || 0), 0);
  return `t${n + 1}`;
}

/** `title`, or `title (2)`, `title (3)`… when an open tab already has it. */
export function uniqueTitle(tabs: OpenTab[], title: string): string {
  const taken = new Set(tabs.map((t) => t.title));
  if (!taken.has(title)) return title;
  for (let i = 2; ; i++) if (!taken.has(`${title} (${i})`)) return `${title} (${i})`;
}

/** The first terminal name of `base`, `base-2`, `base-3`… that no open tab of `node` uses. */
export function nextTerminalName(tabs: OpenTab[], node: string, base: string): string {
  const used = new Set(tabs.filter((t) => t.kind === 'terminal' && t.node === node).map((t) => t.terminal));
  if (!used.has(base)) return base;
  for (let i = 2; ; i++) if (!used.has(`${base}-${i}`)) return `${base}-${i}`;
}

/** Appends `tab` (under a fresh key) and makes it active. */
export function addTab(state: TabsState, tab: NewTab): { state: TabsState; key: string } {
  const key = nextKey(state.tabs);
  return { state: { tabs: [...state.tabs, { ...tab, key }], active: key }, key };
}

/** Removes the tab `key`; when it was active, its right neighbour (else its left) is. */
export function closeTab(state: TabsState, key: string): TabsState {
  const i = state.tabs.findIndex((t) => t.key === key);
  if (i < 0) return state;
  const tabs = state.tabs.filter((t) => t.key !== key);
  if (state.active !== key) return { tabs, active: state.active };
  return { tabs, active: (tabs[i] ?? tabs[i - 1])?.key ?? '' };
}

export function updateTab(state: TabsState, key: string, patch: Partial<NewTab>): TabsState {
  return { ...state, tabs: state.tabs.map((t) => (t.key === key ? { ...t, ...patch } : t)) };
}

/** The tab Run types into for `node`: its first terminal (`base`), else any of its terminals. */
export function terminalOf(state: TabsState, node: string, base: string): OpenTab | null {
  const mine = state.tabs.filter((t) => t.kind === 'terminal' && t.node === node);
  return mine.find((t) => t.terminal === base) ?? mine[0] ?? null;
}

/** The service tab showing `port` of `node`: one on `path` if there is one, else any. */
export function serviceOf(state: TabsState, node: string, port: number, path?: string | null): OpenTab | null {
  const mine = state.tabs.filter((t) => t.kind === 'service' && t.node === node && t.port === port);
  if (path) return mine.find((t) => normalPath(t.path) === normalPath(path)) ?? mine[0] ?? null;
  return mine[0] ?? null;
}

/** The tabs a lab starts with: the ones it declares (those naming a node it does not have
 * left out), or a terminal per node when it declares none. Terminal names: `base` for the
 * first terminal of a node, `base-2`… for more. */
export function fromLab(declared: Tab[] | undefined, nodes: string[], base: string): TabsState {
  const known = new Set(nodes);
  const wanted: Tab[] = (declared ?? []).filter((t) =>
    t.kind === 'website' ? isWebUrl(t.url) : t.node !== null && known.has(t.node) && (t.kind !== 'service' || validPort(t.port)),
  );
  const list = wanted.length
    ? wanted
    : nodes.map((n): Tab => ({ kind: 'terminal', node: n, port: null, path: null, url: null, title: n }));
  let state: TabsState = { tabs: [], active: '' };
  for (const t of list) {
    const terminal = t.kind === 'terminal' ? nextTerminalName(state.tabs, t.node!, base) : null;
    state = addTab(state, { ...t, title: uniqueTitle(state.tabs, t.title.slice(0, MAX_TITLE) || t.kind), terminal }).state;
  }
  return { tabs: state.tabs, active: state.tabs[0]?.key ?? '' };
}

/** One stored tab, checked field by field: null when anything is off. */
function restoreTab(v: unknown, known: Set<string>): OpenTab | null {
  if (typeof v !== 'object' || v === null) return null;
  const t = v as Record<string, unknown>;
  const str = (x: unknown) => (typeof x === 'string' ? x : null);
  const kind = t.kind as TabKind;
  const key = str(t.key);
  const title = str(t.title);
  const node = str(t.node);
  if (!KINDS.includes(kind) || !key || !KEY.test(key) || !title || title.length > MAX_TITLE) return null;
  const tab: OpenTab = { key, kind, node, port: null, path: str(t.path), url: null, title, terminal: null };
  if (kind === 'website') {
    if (!isWebUrl(str(t.url))) return null;
    return { ...tab, node: null, url: str(t.url) };
  }
  if (!node || !known.has(node)) return null;
  if (kind === 'service') return validPort(t.port) ? { ...tab, port: t.port } : null;
  if (kind === 'terminal') {
    const name = str(t.terminal);
    return name && TERMINAL_NAME.test(name) ? { ...tab, path: null, terminal: name } : null;
  }
  return tab;
}

/** The state stored as `raw`, keeping only tabs that make sense for these nodes; null when
 * nothing usable is stored (all tabs closed is a state; all tabs unusable is not). */
export function restore(raw: string | null, nodes: string[]): TabsState | null {
  if (!raw) return null;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  const o = v as { tabs?: unknown; active?: unknown };
  if (typeof o !== 'object' || o === null || !Array.isArray(o.tabs)) return null;
  const known = new Set(nodes);
  const tabs: OpenTab[] = [];
  for (const item of o.tabs.slice(0, MAX_TABS)) {
    const t = restoreTab(item, known);
    if (!t || tabs.some((x) => x.key === t.key || (x.kind === 'terminal' && x.node === t.node && x.terminal === t.terminal))) continue;
    tabs.push(t);
  }
  if (o.tabs.length && !tabs.length) return null;
  const active = tabs.find((t) => t.key === o.active)?.key ?? tabs[0]?.key ?? '';
  return { tabs, active };
}

const PREFIX = 'sandlab.tabs.';
/** Stored tabs of sessions and sandboxes not seen for this long are forgotten. */
const KEEP_MS = 30 * 24 * 3600_000;

/** The stored state for `id` (a session or sandbox id), or `fallback`. */
export function loadTabs(id: string, nodes: string[], fallback: () => TabsState): TabsState {
  let raw: string | null = null;
  try {
    raw = localStorage.getItem(PREFIX + id);
  } catch {
    /* storage blocked: start from the lab's tabs */
  }
  return restore(raw, nodes) ?? fallback();
}

/** When the state stored as `raw` was saved (0 when unreadable). */
function savedAt(raw: string | null): number {
  try {
    return Number((JSON.parse(raw ?? '{}') as { at?: unknown }).at) || 0;
  } catch {
    return 0;
  }
}

/** Stores the state for `id`, forgetting the tabs of others not seen for a month. */
export function saveTabs(id: string, state: TabsState, now = Date.now()): void {
  try {
    localStorage.setItem(PREFIX + id, JSON.stringify({ ...state, at: now }));
    for (let i = localStorage.length - 1; i >= 0; i--) {
      const k = localStorage.key(i);
      if (k?.startsWith(PREFIX) && k !== PREFIX + id && savedAt(localStorage.getItem(k)) < now - KEEP_MS) localStorage.removeItem(k);
    }
  } catch {
    /* storage full or blocked: the tabs just are not kept */
  }
}
