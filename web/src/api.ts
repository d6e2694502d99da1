// The typed client of the public HTTP API (SPEC section 6). Every page talks to the
// server through this file only: JSON in and out, the session cookie sent by the browser,
// the CSRF header added on unsafe methods, and every failure turned into an `ApiError`
// whose `message` is a sentence fit to show.
import { rememberTaskTitles } from './format';
import type { MemberProgress, NewOrg, Org, OrgMember, OrgPatch, OrgRole } from './lib/orgs';

export type Role = 'learner' | 'author' | 'admin';

export interface User {
  id: string;
  username: string;
  role: Role;
  disabled: boolean;
  created_at_ms: number;
}

export interface LoginResponse {
  user: User;
  csrf_token: string;
  expires_at_ms: number;
}

export interface ListOf<T> {
  items: T[];
  next: string | null;
}

export interface LabProgress {
  /** Checked tasks done by the caller (in any session of this lab). */
  done: number;
  /** Checked tasks of the lab. */
  total: number;
  /** The caller's running session of this lab, if any. */
  session: string | null;
}

export interface LabSummary {
  slug: string;
  title: string;
  description: string;
  kind: 'tutorial' | 'challenge' | string;
  /** Not published: only authors and admins see it. */
  draft?: boolean;
  tags: string[];
  tasks: number;
  nodes: number;
  ttl_ms: number;
  progress: LabProgress;
}

export interface NodeView {
  name: string;
  image: string;
  memory: string;
  cpus: number;
  network: string;
}

export interface LabProblem {
  file: string;
  line: number;
  column?: number | null;
  message: string;
}

export interface TaskView {
  id: string;
  /** The author's title; absent: the id spelled as words. */
  title?: string | null;
  init: boolean;
  needs: string[];
  machine: string;
  has_hint: boolean;
}

export interface ExecBlock {
  id: number;
  language: string | null;
  command: string;
  /** The node whose terminal Run types into. */
  node: string;
}

export type TabKind = 'terminal' | 'service' | 'editor' | 'website';

/** A tab the lab declares (a lab without `tabs:` gets a terminal per node). */
export interface Tab {
  kind: TabKind;
  /** The node of a terminal, service or editor tab. */
  node: string | null;
  /** A service tab's port. */
  port: number | null;
  /** A service tab's path, or the folder an editor tab shows. */
  path: string | null;
  /** A website tab's address. */
  url: string | null;
  title: string;
}

export interface LabDetail extends LabSummary {
  /** Rendered, sanitised HTML. `{exec}` blocks and `::task{id=…}` markers are elements
   * carrying `data-exec="<id>"` and `data-task="<id>"`; port links are
   * `a.sandlab-port` with `data-node`, `data-port` and `data-path` (or `data-select`). */
  html: string;
  playground: NodeView[];
  /** `kubernetes` when the nodes become a cluster before the tasks run. */
  cluster?: string | null;
  task_list: TaskView[];
  exec_blocks: ExecBlock[];
  tabs: Tab[];
}

export type TaskState = 'pending' | 'blocked' | 'running' | 'done' | 'failed';

export interface TaskStatus {
  id: string;
  state: TaskState;
  init: boolean;
  hint_revealed: boolean;
}

export type SessionState = 'starting' | 'ready' | 'failed' | 'ended';

export interface SessionView {
  id: string;
  lab: string;
  owner: string;
  state: SessionState;
  reason: string | null;
  nodes: { name: string; sandbox: string }[];
  tasks: TaskStatus[];
  created_at_ms: number;
  expires_at_ms: number;
  ttl_left_ms: number;
}

export interface Hint {
  task: string;
  html: string;
}

export interface Limits {
  memory: string;
  cpus: number;
  pids: number;
  disk: string;
  network: string;
}

export interface Sandbox {
  id: string;
  state: 'creating' | 'running' | 'stopping' | 'removed' | 'failed';
  reason: string | null;
  image: string;
  owner: string | null;
  limits: Limits;
  created_at_ms: number;
  expires_at_ms: number;
  ttl_left_ms: number;
  ipv4: string | null;
  ipv6: string | null;
}

export interface CreateSandbox {
  image?: string;
  memory?: string;
  cpus?: number;
  pids?: number;
  disk?: string;
  network?: 'none' | 'egress';
  /** The hostname inside (default `sandbox`). */
  hostname?: string;
  ttl?: string;
}

export interface ImageView {
  name: string;
  /** The manifest digest, `sha256:<hex>`. */
  digest: string;
  /** Bytes of regular files in the unpacked tree. */
  size: number;
  created_at_ms: number;
  /** Where it came from: `mmdebstrap bookworm`, `import`, `pull REF`. */
  source: string;
}

export type FileKind = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char_device' | 'block_device' | 'other';

export interface DirEntry {
  name: string;
  kind: FileKind;
  size: number;
  mode: number;
  mtime_ms: number;
}

export interface ExecResult {
  exit_code: number | null;
  stdout: string;
  stderr: string;
  duration_ms: number;
  status: string;
}

/** A TCP port listening inside a sandbox. */
export interface PortView {
  port: number;
  /** The address it listens on (`0.0.0.0`, `127.0.0.1`, `::`). */
  address: string;
}

/** A one-time sign-in link to a port, on the proxy's origin. */
export interface PortOpen {
  url: string;
  expires_at_ms: number;
}

/** A public link to a port of a sandbox, until it expires. */
export interface Share {
  id: string;
  port: number;
  /** Where the link lands. */
  path: string;
  /** The link itself: only in the answer that made it (the server keeps no copy). */
  url: string | null;
  expires_at_ms: number;
  created_at_ms: number;
}

/** Who may create an account: anyone, holders of an invite link, or nobody. */
export type SignupMode = 'open' | 'invite' | 'closed';

/** What the sign-in and sign-up pages need to know before anyone signs in. */
export interface AuthProvider {
  name: string;
  /** The button's text. */
  title: string;
  /** Where the button goes; `?next=/path` lands there once signed in. */
  start_url: string;
}

export interface AuthConfig {
  signup: SignupMode;
  /** Single sign-on providers (`[[auth.oidc]]`): a button each on the sign-in page. */
  providers: AuthProvider[];
}

/** An invite link to sign up with a role, until it expires or is used up. */
export interface Invite {
  id: string;
  role: Role;
  expires_at_ms: number;
  /** How many sign-ups it allows. */
  uses: number;
  /** How many it has had. */
  used: number;
  /** The admin who made it; null when made with `sandlab user invite`. */
  created_by: string | null;
  created_at_ms: number;
  /** Only in the answer that made it (the server keeps no copy). */
  token?: string;
  /** `/signup?invite=<token>`, only in the answer that made it. */
  url?: string;
}

export interface NewInvite {
  role: Role;
  /** e.g. "7d". */
  expires_in: string;
  uses: number;
}

/** A one-time link to set a new password, shown once. */
export interface PasswordReset {
  token: string;
  /** `/reset?token=<token>`. */
  url: string;
  expires_at_ms: number;
}

/** A file fetched for saving: its bytes and the name the server gave it. */
export interface Download {
  blob: Blob;
  name: string;
}

/** A failed request: `message` is one sentence that can be shown as it is. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Called when a request answers 401 (the login ended): the app shows the sign-in page. */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(f: () => void): void {
  onUnauthorized = f;
}

export function cookie(name: string): string | null {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return null;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const unreachable = () => new ApiError(0, 'network', 'The server could not be reached; check the connection and try again.');

function headersFor(method: string, contentType?: string): Record<string, string> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (contentType) headers['content-type'] = contentType;
  if (UNSAFE.has(method)) headers['x-csrf-token'] = cookie('sandlab_csrf') ?? '';
  return headers;
}

/** The error of a failed answer: the server's `{error: {code, message}}`, or a generic
 * sentence when the body is not that. A 401 also tells the app the login ended. */
function failure(path: string, status: number, statusText: string, body: string): ApiError {
  let code = 'http_' + status;
  let message = `The server answered ${status} ${statusText || ''}`.trim() + '.';
  try {
    const e = JSON.parse(body) as { error?: { code?: string; message?: string } };
    if (e.error?.code) code = e.error.code;
    if (e.error?.message) message = e.error.message;
  } catch {
    /* not JSON: keep the generic sentence */
  }
  // The signed-out pages' requests (a wrong password, a used-up invite) end no login.
  if (status === 401 && !path.startsWith('/auth/')) onUnauthorized();
  return new ApiError(status, code, message);
}

async function request(method: string, path: string, body?: BodyInit, contentType?: string): Promise<Response> {
  let resp: Response;
  try {
    resp = await fetch(`/api/v1${path}`, { method, headers: headersFor(method, contentType), body, credentials: 'same-origin' });
  } catch {
    throw unreachable();
  }
  if (resp.ok) return resp;
  throw failure(path, resp.status, resp.statusText, await resp.text().catch(() => ''));
}

/** The file name of a `Content-Disposition: attachment; filename="…"` header, or null. */
export function attachmentName(header: string | null): string | null {
  const m = /filename="([^"]*)"/.exec(header ?? '') ?? /filename=([^;\s]+)/.exec(header ?? '');
  return m && m[1] ? m[1] : null;
}

async function download(path: string, fallbackName: string): Promise<Download> {
  const resp = await request('GET', path);
  const blob = await resp.blob().catch(() => {
    throw unreachable();
  });
  return { blob, name: attachmentName(resp.headers.get('content-disposition')) ?? fallbackName };
}

/** PUT of raw bytes with upload progress (fetch reports none). Rejects with an `ApiError`,
 * or a `DOMException` named `AbortError` when `signal` aborts it. */
function putWithProgress(path: string, body: Blob, onProgress?: (sent: number, total: number) => void, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', `/api/v1${path}`);
    for (const [k, v] of Object.entries(headersFor('PUT', 'application/octet-stream'))) xhr.setRequestHeader(k, v);
    if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : body.size);
    xhr.onload = () =>
      xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(failure(path, xhr.status, xhr.statusText, xhr.responseText));
    xhr.onerror = () => reject(unreachable());
    xhr.onabort = () => reject(new DOMException('The upload was cancelled.', 'AbortError'));
    if (signal) {
      if (signal.aborted) return reject(new DOMException('The upload was cancelled.', 'AbortError'));
      signal.addEventListener('abort', () => xhr.abort(), { once: true });
    }
    xhr.send(body);
  });
}

async function json<T>(method: string, path: string, body?: unknown): Promise<T> {
  const resp = await request(
    method,
    path,
    body === undefined ? undefined : JSON.stringify(body),
    body === undefined ? undefined : 'application/json',
  );
  if (resp.status === 204) return undefined as T;
  return (await resp.json()) as T;
}

const enc = encodeURIComponent;

export const api = {
  login: (username: string, password: string) => json<LoginResponse>('POST', '/auth/login', { username, password }),
  logout: () => json<void>('POST', '/auth/logout'),
  me: () => json<User>('GET', '/me'),
  authConfig: () => json<AuthConfig>('GET', '/auth/config'),
  /** Creates an account and signs it in (the session cookie, as a login sets it). */
  signup: (username: string, password: string, invite?: string) =>
    json<User>('POST', '/auth/signup', invite ? { username, password, invite } : { username, password }),
  changePassword: (current: string, next: string) => json<void>('POST', '/me/password', { current, new: next }),
  /** Sets a new password with the token of a reset link (no login needed). */
  completeReset: (token: string, password: string) => json<void>('POST', '/auth/reset', { token, password }),

  labs: () => json<ListOf<LabSummary>>('GET', '/labs'),
  /** Why labs are left out of the catalogue (authors and admins). */
  labProblems: () => json<ListOf<LabProblem>>('GET', '/lab-problems'),
  lab: (slug: string) =>
    json<LabDetail>('GET', `/labs/${enc(slug)}`).then((lab) => {
      rememberTaskTitles(lab.task_list);
      return lab;
    }),
  startSession: (slug: string, fresh = false) =>
    json<SessionView>('POST', `/labs/${enc(slug)}/sessions${fresh ? '?fresh=true' : ''}`),

  sessions: () => json<ListOf<SessionView>>('GET', '/sessions'),
  /** The sessions that are starting or ready (ended and failed ones left out by the server). */
  activeSessions: () => json<ListOf<SessionView>>('GET', '/sessions?active=true'),
  session: (id: string) => json<SessionView>('GET', `/sessions/${enc(id)}`),
  endSession: (id: string) => json<void>('DELETE', `/sessions/${enc(id)}`),
  extendSession: (id: string, ttl?: string) => json<SessionView>('POST', `/sessions/${enc(id)}/extend`, ttl ? { ttl } : {}),
  hint: (id: string, task: string) => json<Hint>('POST', `/sessions/${enc(id)}/tasks/${enc(task)}/hint`),
  /** The URL of a session's Server-Sent Events (for `EventSource`). */
  eventsUrl: (id: string) => `/api/v1/sessions/${enc(id)}/events`,

  images: () => json<ListOf<ImageView>>('GET', '/images'),
  sandboxes: (cursor?: string) => json<ListOf<Sandbox>>('GET', `/sandboxes?limit=500${cursor ? `&cursor=${enc(cursor)}` : ''}`),
  sandbox: (id: string) => json<Sandbox>('GET', `/sandboxes/${enc(id)}`),
  createSandbox: (req: CreateSandbox) => json<Sandbox>('POST', '/sandboxes', req),
  deleteSandbox: (id: string) => json<void>('DELETE', `/sandboxes/${enc(id)}`),
  extendSandbox: (id: string, ttl?: string) => json<Sandbox>('POST', `/sandboxes/${enc(id)}/extend`, ttl ? { ttl } : {}),
  exec: (id: string, cmd: string[], timeout?: string) => json<ExecResult>('POST', `/sandboxes/${enc(id)}/exec`, { cmd, timeout }),
  listDir: (id: string, path: string) => json<ListOf<DirEntry>>('GET', `/sandboxes/${enc(id)}/dir?path=${enc(path)}`),
  readFile: async (id: string, path: string): Promise<Uint8Array> => {
    const resp = await request('GET', `/sandboxes/${enc(id)}/files?path=${enc(path)}`);
    return new Uint8Array(await resp.arrayBuffer());
  },
  writeFile: async (id: string, path: string, data: Uint8Array | string): Promise<void> => {
    const body = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    const blob = new Blob([body as Uint8Array<ArrayBuffer>]);
    await request('PUT', `/sandboxes/${enc(id)}/files?path=${enc(path)}`, blob, 'application/octet-stream');
  },
  /** Uploads `file` to `path` (replacing a file there), reporting the bytes sent. */
  uploadFile: (id: string, path: string, file: Blob, onProgress?: (sent: number, total: number) => void, signal?: AbortSignal) =>
    putWithProgress(`/sandboxes/${enc(id)}/files?path=${enc(path)}`, file, onProgress, signal),
  /** A file of the sandbox, for saving. */
  downloadFile: (id: string, path: string) =>
    download(`/sandboxes/${enc(id)}/files?path=${enc(path)}`, path.split('/').pop() || 'file'),
  /** A folder of the sandbox as a `.tar.gz` archive, for saving. */
  downloadArchive: (id: string, path: string) =>
    download(`/sandboxes/${enc(id)}/archive?path=${enc(path)}`, `${path.split('/').filter(Boolean).pop() ?? 'root'}.tar.gz`),
  /** The TCP ports listening inside the sandbox now. */
  ports: (id: string) => json<ListOf<PortView>>('GET', `/sandboxes/${enc(id)}/ports`),
  /** A fresh one-time link that signs in to the proxy and lands on `path` of `port`. */
  openPort: (id: string, port: number, path?: string | null) =>
    json<PortOpen>('POST', `/sandboxes/${enc(id)}/ports/${port}/open`, path ? { path } : {}),
  /** A public link to `port` for `ttl` (e.g. "1h"). */
  createShare: (id: string, port: number, ttl: string, path?: string | null) =>
    json<Share>('POST', `/sandboxes/${enc(id)}/ports/${port}/shares`, path ? { ttl, path } : { ttl }),
  shares: (id: string) => json<ListOf<Share>>('GET', `/sandboxes/${enc(id)}/shares`),
  deleteShare: (id: string, share: string) => json<void>('DELETE', `/sandboxes/${enc(id)}/shares/${enc(share)}`),
  /** The WebSocket URL of a sandbox's named terminal. */
  terminalUrl: (id: string, name: string) => {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/api/v1/sandboxes/${enc(id)}/terminal?name=${enc(name)}`;
  },

  users: () => json<ListOf<User>>('GET', '/users?limit=500'),
  createUser: (username: string, password: string, role: Role) => json<User>('POST', '/users', { username, password, role }),
  updateUser: (id: string, patch: { role?: Role; disabled?: boolean; password?: string }) =>
    json<User>('PATCH', `/users/${enc(id)}`, patch),
  /** A one-time link for the user to set a new password. */
  passwordReset: (id: string) => json<PasswordReset>('POST', `/users/${enc(id)}/password-reset`),

  /** Every invite, all pages of the listing. */
  invites: async (): Promise<Invite[]> => {
    const all: Invite[] = [];
    let cursor: string | null = null;
    // Bounded, should a server keep answering with a `next`.
    for (let i = 0; i < 20; i++) {
      const r: ListOf<Invite> = await json('GET', `/invites?limit=500${cursor ? `&cursor=${enc(cursor)}` : ''}`);
      all.push(...r.items);
      cursor = r.next;
      if (!cursor) break;
    }
    return all;
  },
  createInvite: (req: NewInvite) => json<Invite>('POST', '/invites', req),
  deleteInvite: (id: string) => json<void>('DELETE', `/invites/${enc(id)}`),

  // Organisations (types in lib/orgs.ts).
  orgs: async (): Promise<Org[]> => (await json<ListOf<Org>>('GET', '/orgs')).items,
  createOrg: (req: NewOrg) => json<Org>('POST', '/orgs', req),
  updateOrg: (id: string, patch: OrgPatch) => json<Org>('PATCH', `/orgs/${enc(id)}`, patch),
  deleteOrg: (id: string) => json<void>('DELETE', `/orgs/${enc(id)}`),
  orgMembers: async (id: string): Promise<OrgMember[]> => (await json<ListOf<OrgMember>>('GET', `/orgs/${enc(id)}/members`)).items,
  addOrgMember: (id: string, user: string, role: OrgRole) => json<OrgMember>('POST', `/orgs/${enc(id)}/members`, { user, role }),
  updateOrgMember: (id: string, user: string, role: OrgRole) =>
    json<OrgMember>('PATCH', `/orgs/${enc(id)}/members/${enc(user)}`, { role }),
  removeOrgMember: (id: string, user: string) => json<void>('DELETE', `/orgs/${enc(id)}/members/${enc(user)}`),
  orgProgress: async (id: string, lab?: string): Promise<MemberProgress[]> =>
    (await json<ListOf<MemberProgress>>('GET', `/orgs/${enc(id)}/progress${lab ? `?lab=${enc(lab)}` : ''}`)).items,

  /** The Prometheus text of `/metrics` (outside `/api/v1`). */
  metrics: async (): Promise<string> => {
    let resp: Response;
    try {
      resp = await fetch('/metrics', { credentials: 'same-origin' });
    } catch {
      throw unreachable();
    }
    if (!resp.ok) throw new ApiError(resp.status, 'metrics', `The metrics could not be read (HTTP ${resp.status}).`);
    return resp.text();
  },
};

/** A sentence for any thrown value. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message.endsWith('.') ? e.message : e.message + '.';
  return 'Something went wrong.';
}
