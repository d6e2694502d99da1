// The playground: start a raw sandbox from an image with optional limits, list the
// user's own sandboxes, and work in one (/playground/:id) with a file tree, an editor and
// a terminal side by side.
import { useEffect, useRef, useState } from 'preact/hooks';

import { api, errorText, type CreateSandbox, type DirEntry, type ImageView, type Sandbox, type User } from '../api';
import type { EditorHandle } from '../components/Editor';
import { LazyEditor } from '../components/LazyEditor';
import { languageOf } from '../lib/language';
import { FileTree } from '../components/FileTree';
import { Terminal } from '../components/Terminal';
import { ConfirmButton, Empty, ErrorMessage, Spinner } from '../components/ui';
import { ago, bytes, clock } from '../format';
import { navigate } from '../router';
import './Playground.css';

/** The editor opens text files up to this size. */
export const MAX_EDIT_BYTES = 1 << 20;

/** Re-renders every `ms` while mounted and returns the current time. */
function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/** Runs `f` now and every `ms` while the tab is visible (and once more when it shows again). */
function usePoll(f: () => void, ms: number, deps: unknown[] = []) {
  const fn = useRef(f);
  fn.current = f;
  useEffect(() => {
    let t: ReturnType<typeof setInterval> | undefined;
    const start = () => {
      stop();
      t = setInterval(() => fn.current(), ms);
    };
    const stop = () => t !== undefined && clearInterval(t);
    const vis = () => {
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
  }, deps);
}

export function Playground(props: { user: User; sandbox?: string }) {
  return props.sandbox ? <SandboxWorkspace id={props.sandbox} user={props.user} /> : <PlaygroundHome user={props.user} />;
}

// ---------------------------------------------------------------------------------------
// /playground: start one, list mine.

const MEMORY = ['256M', '512M', '1G', '2G'];
const TTLS: [string, string][] = [
  ['15m', '15 minutes'],
  ['30m', '30 minutes'],
  ['1h', '1 hour'],
  ['2h', '2 hours'],
];

interface Listed {
  items: Sandbox[];
  /** Local time of the fetch: a deadline is `fetchedAt + ttl_left_ms` (no clock skew). */
  fetchedAt: number;
}

function PlaygroundHome(props: { user: User }) {
  const [images, setImages] = useState<ImageView[] | null>(null);
  const [imagesError, setImagesError] = useState<string | null>(null);
  const [image, setImage] = useState('debian');
  const [memory, setMemory] = useState('');
  const [network, setNetwork] = useState<'none' | 'egress'>('none');
  const [ttl, setTtl] = useState('');
  const [starting, setStarting] = useState(false);
  const [startError, setStartError] = useState<string | null>(null);
  const [list, setList] = useState<Listed | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [stopError, setStopError] = useState<string | null>(null);
  const now = useNow();

  const loadImages = () => {
    setImagesError(null);
    api
      .images()
      .then((r) => {
        setImages(r.items);
        if (r.items.length && !r.items.some((i) => i.name === image)) {
          setImage(r.items.some((i) => i.name === 'debian') ? 'debian' : r.items[0].name);
        }
      })
      .catch((e) => setImagesError(errorText(e)));
  };
  useEffect(loadImages, []);

  const loadList = async () => {
    try {
      const [sbs, sessions] = await Promise.all([api.sandboxes(), api.sessions().catch(() => null)]);
      // Lab sessions' nodes are the user's sandboxes too; they belong to the lab page.
      const labNodes = new Set((sessions?.items ?? []).flatMap((s) => s.nodes.map((n) => n.sandbox)));
      const mine = sbs.items.filter(
        (s) => s.owner === props.user.id && !labNodes.has(s.id) && (s.state === 'running' || s.state === 'creating'),
      );
      setList({ items: mine.reverse(), fetchedAt: Date.now() });
      setListError(null);
    } catch (e) {
      setListError(errorText(e));
    }
  };
  usePoll(loadList, 10_000);

  const start = async (e: Event) => {
    e.preventDefault();
    setStarting(true);
    setStartError(null);
    const req: CreateSandbox = { image, network };
    if (memory) req.memory = memory;
    if (ttl) req.ttl = ttl;
    try {
      const sb = await api.createSandbox(req);
      navigate(`/playground/${encodeURIComponent(sb.id)}`);
    } catch (err) {
      setStartError(errorText(err));
      setStarting(false);
    }
  };

  const stop = async (id: string) => {
    setStopError(null);
    try {
      await api.deleteSandbox(id);
    } catch (e) {
      setStopError(errorText(e));
    }
    await loadList();
  };

  const imageNames = images && images.length ? images.map((i) => i.name) : [image];
  const chosen = images?.find((i) => i.name === image);

  return (
    <main class="page pg-home">
      <h1>Playground</h1>
      <p class="muted">A fresh Linux machine for trying things out, with a terminal, a file tree and an editor. It is removed when its time runs out.</p>

      <form class="card pg-start" onSubmit={start} aria-label="Start a playground">
        <div class="pg-fields">
          <div class="field">
            <label for="pg-image">Image</label>
            <select id="pg-image" data-testid="image-select" value={image} onChange={(e) => setImage((e.target as HTMLSelectElement).value)}>
              {imageNames.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="pg-memory">Memory</label>
            <select id="pg-memory" data-testid="memory-select" value={memory} onChange={(e) => setMemory((e.target as HTMLSelectElement).value)}>
              <option value="">Default</option>
              {MEMORY.map((m) => (
                <option key={m} value={m}>
                  {m.replace(/([MG])$/, ' $1B').replace('MB', 'MiB').replace('GB', 'GiB')}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="pg-network">Network</label>
            <select
              id="pg-network"
              data-testid="network-select"
              value={network}
              onChange={(e) => setNetwork((e.target as HTMLSelectElement).value as 'none' | 'egress')}
            >
              <option value="none">None (loopback only)</option>
              <option value="egress">Internet access</option>
            </select>
          </div>
          <div class="field">
            <label for="pg-ttl">Time</label>
            <select id="pg-ttl" data-testid="ttl-select" value={ttl} onChange={(e) => setTtl((e.target as HTMLSelectElement).value)}>
              <option value="">Default</option>
              {TTLS.map(([v, l]) => (
                <option key={v} value={v}>
                  {l}
                </option>
              ))}
            </select>
          </div>
          <div class="field pg-go">
            <button type="submit" data-testid="start-playground" disabled={starting}>
              {starting ? 'Starting…' : 'Start playground'}
            </button>
          </div>
        </div>
        <p class="muted pg-image-note">
          {chosen ? `${chosen.name}: ${chosen.source}, ${bytes(chosen.size)}.` : images === null && !imagesError ? 'Loading the images…' : '\u00a0'}
        </p>
        {imagesError && <ErrorMessage message={imagesError} retry={loadImages} />}
        {startError && <ErrorMessage message={startError} />}
      </form>

      <h2>Your sandboxes</h2>
      {stopError && <ErrorMessage message={stopError} />}
      {listError && <ErrorMessage message={listError} retry={loadList} />}
      {list === null && !listError && <Spinner label="Loading your sandboxes" />}
      {list && list.items.length === 0 && <Empty>You have no running sandboxes. Start one above.</Empty>}
      {list && list.items.length > 0 && (
        <ul class="pg-list">
          {list.items.map((s) => {
            const left = list.fetchedAt + s.ttl_left_ms - now;
            return (
              <li key={s.id} class="card pg-item" data-testid="playground-item" data-id={s.id}>
                <div class="pg-item-main">
                  <a class="pg-item-id" href={`/playground/${encodeURIComponent(s.id)}`}>
                    {s.id}
                  </a>
                  <span class="badge">{s.image}</span>
                  {s.state !== 'running' && <span class="badge warn">{s.state}</span>}
                </div>
                <div class="pg-item-meta muted">
                  <span>Started {ago(s.created_at_ms, now)}</span>
                  <span>
                    {left > 0 ? (
                      <>
                        <span class="pg-num">{clock(left)}</span> left
                      </>
                    ) : (
                      'Expiring'
                    )}
                  </span>
                  <span>
                    {s.limits.memory} memory, network {s.limits.network}
                  </span>
                </div>
                <div class="row pg-item-actions">
                  <a class="button small" href={`/playground/${encodeURIComponent(s.id)}`} data-testid="open-playground">
                    Open
                  </a>
                  <ConfirmButton class="danger small" testid="stop-playground-item" onConfirm={() => stop(s.id)} confirm="Click again to stop">
                    Stop
                  </ConfirmButton>
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </main>
  );
}

// ---------------------------------------------------------------------------------------
// /playground/:id: file tree, editor, terminal.

type Loaded = { state: 'loading' } | { state: 'error'; message: string; status: number } | { state: 'ok'; sb: Sandbox; deadline: number };

interface Doc {
  /** Changes per opened document (the editor replaces its text). */
  key: string;
  text: string;
  /** The path the text was read from / last saved to ('' for a scratch buffer). */
  savedPath: string;
  /** Not on disk yet (a "New file"). */
  isNew: boolean;
}

type SaveState = { state: 'idle' } | { state: 'saving' } | { state: 'saved'; at: number } | { state: 'error'; message: string };

let docCounter = 0;

function SandboxWorkspace(props: { id: string; user: User }) {
  const id = props.id;
  const [loaded, setLoaded] = useState<Loaded>({ state: 'loading' });
  const [expired, setExpired] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [extending, setExtending] = useState(false);
  const now = useNow();

  const [doc, setDoc] = useState<Doc>({ key: `d${++docCounter}`, text: '', savedPath: '', isNew: true });
  const [path, setPath] = useState('');
  const [editorDirty, setEditorDirty] = useState(false);
  const [save, setSave] = useState<SaveState>({ state: 'idle' });
  const [fileError, setFileError] = useState<string | null>(null);
  const [opening, setOpening] = useState<string | null>(null);
  const [pending, setPending] = useState<{ path: string; entry?: DirEntry; isNew: boolean } | null>(null);
  const [treeKey, setTreeKey] = useState(0);
  const editor = useRef<EditorHandle | null>(null);

  // Unsaved: the text changed, or an existing file's path was edited (a pending "save as").
  const dirty = editorDirty || (!doc.isNew && path.trim() !== doc.savedPath);

  const load = async (first: boolean) => {
    try {
      const sb = await api.sandbox(id);
      const deadline = Date.now() + sb.ttl_left_ms;
      setLoaded({ state: 'ok', sb, deadline });
      if (sb.state === 'removed' || sb.state === 'failed' || sb.state === 'stopping')
        setExpired(sb.reason ? `This sandbox is ${sb.state}: ${sb.reason}` : `This sandbox is ${sb.state}; start a new one from the playground page.`);
    } catch (e) {
      if (first) setLoaded({ state: 'error', message: errorText(e), status: (e as { status?: number }).status ?? 0 });
      else if ((e as { status?: number }).status === 404) setExpired('This sandbox has expired or was stopped, and has been removed.');
    }
  };
  useEffect(() => {
    load(true);
  }, [id]);
  // Check now and then whether it still exists (it may be stopped elsewhere or expire).
  useEffect(() => {
    if (loaded.state !== 'ok' || expired) return;
    const t = setInterval(() => !document.hidden && load(false), 20_000);
    return () => clearInterval(t);
  }, [loaded.state, expired]);

  const left = loaded.state === 'ok' ? loaded.deadline - now : 0;
  useEffect(() => {
    if (loaded.state === 'ok' && left <= 0 && !expired) {
      setExpired('This sandbox has expired and was removed; its files are gone.');
    }
  }, [left <= 0, loaded.state]);

  // Warn before leaving the page with unsaved changes.
  useEffect(() => {
    if (!dirty) return;
    const h = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = '';
    };
    window.addEventListener('beforeunload', h);
    return () => window.removeEventListener('beforeunload', h);
  }, [dirty]);

  const openFile = async (p: string, entry?: DirEntry) => {
    setFileError(null);
    setPending(null);
    if (entry && entry.kind === 'file' && entry.size > MAX_EDIT_BYTES) {
      setFileError(`${p} is ${bytes(entry.size)}; the editor opens files up to 1 MiB.`);
      return;
    }
    setOpening(p);
    try {
      const data = await api.readFile(id, p);
      if (data.length > MAX_EDIT_BYTES) {
        setFileError(`${p} is ${bytes(data.length)}; the editor opens files up to 1 MiB.`);
        return;
      }
      if (data.includes(0)) {
        setFileError(`${p} looks like a binary file (it contains NUL bytes); the editor opens text files only.`);
        return;
      }
      const text = new TextDecoder('utf-8').decode(data);
      setDoc({ key: `d${++docCounter}`, text, savedPath: p, isNew: false });
      setPath(p);
      setSave({ state: 'idle' });
    } catch (e) {
      setFileError(errorText(e));
    } finally {
      setOpening(null);
    }
  };

  const newFile = (p: string) => {
    setFileError(null);
    setPending(null);
    setDoc({ key: `d${++docCounter}`, text: '', savedPath: '', isNew: true });
    setPath(p);
    setSave({ state: 'idle' });
    setTimeout(() => editor.current?.focus(), 0);
  };

  /** Opens (or creates) `p` unless there are unsaved changes, in which case it asks first. */
  const request = (p: string, isNew: boolean, entry?: DirEntry) => {
    if (dirty) setPending({ path: p, entry, isNew });
    else if (isNew) newFile(p);
    else openFile(p, entry);
  };

  const saveFile = async () => {
    const h = editor.current;
    if (!h || save.state === 'saving') return;
    const p = path.trim();
    if (expired) {
      setSave({ state: 'error', message: 'The sandbox is gone, so the file cannot be saved; copy the text elsewhere.' });
      return;
    }
    if (!p) {
      setSave({ state: 'error', message: 'Type a path for the file first, for example /root/notes.txt.' });
      return;
    }
    if (!p.startsWith('/') || p.endsWith('/') || p.split('/').some((c) => c === '..')) {
      setSave({ state: 'error', message: 'The path must be absolute (start with /), name a file, and not contain “..”.' });
      return;
    }
    const snap = h.snapshot();
    setSave({ state: 'saving' });
    try {
      await api.writeFile(id, p, snap.text);
      h.markSaved(snap);
      setDoc((d) => ({ ...d, savedPath: p, isNew: false }));
      setSave({ state: 'saved', at: Date.now() });
      setTreeKey((k) => k + 1);
    } catch (e) {
      setSave({ state: 'error', message: errorText(e) });
    }
  };
  const saveRef = useRef(saveFile);
  saveRef.current = saveFile;

  // Ctrl/Cmd+S anywhere on the page (the editor handles it itself when focused).
  useEffect(() => {
    const h = (e: KeyboardEvent) => {
      if (e.defaultPrevented || !(e.ctrlKey || e.metaKey) || e.altKey || e.key.toLowerCase() !== 's') return;
      if ((e.target as Element | null)?.closest?.('.pg-term')) return; // Ctrl+S belongs to the shell there
      e.preventDefault();
      saveRef.current();
    };
    window.addEventListener('keydown', h);
    return () => window.removeEventListener('keydown', h);
  }, []);

  const extend = async () => {
    setExtending(true);
    setActionError(null);
    try {
      const sb = await api.extendSandbox(id, '30m');
      setLoaded({ state: 'ok', sb, deadline: Date.now() + sb.ttl_left_ms });
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
      setEditorDirty(false);
      navigate('/playground');
    } catch (e) {
      setActionError(errorText(e));
    }
  };

  if (loaded.state === 'loading') return <Spinner label="Opening the sandbox" />;
  if (loaded.state === 'error')
    return (
      <main class="page narrow">
        <h1>Playground</h1>
        <ErrorMessage message={loaded.message} retry={loaded.status === 404 ? undefined : () => load(true)} />
        <p>
          <a href="/playground">Back to the playground</a>
        </p>
      </main>
    );

  const sb = loaded.sb;
  const saveText =
    save.state === 'saving'
      ? 'Saving…'
      : save.state === 'error'
        ? save.message
        : dirty
          ? 'Unsaved changes'
          : save.state === 'saved'
            ? 'Saved'
            : doc.isNew && path
              ? 'New file, not saved yet'
              : '';
  const lowTime = !expired && left < 5 * 60_000;

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
              <span class="pg-num">{clock(left)}</span> left
            </span>
          )}
          <button type="button" class="secondary small" data-testid="extend-playground" onClick={extend} disabled={extending || !!expired}>
            {extending ? 'Extending…' : 'Extend to 30 min'}
          </button>
          <ConfirmButton class="danger small" testid="stop-playground" onConfirm={stop} confirm="Click again to stop" disabled={!!expired}>
            Stop
          </ConfirmButton>
          <a class="button secondary small" href="/playground">
            All sandboxes
          </a>
        </div>
      </header>
      {actionError && <ErrorMessage message={actionError} />}
      {expired && (
        <div class="notice" role="status" data-testid="playground-expired">
          {expired} <a href="/playground">Start a new playground</a>.
        </div>
      )}

      <div class="pg-work">
        <section class="pg-pane pg-tree" aria-label="Files">
          <FileTree
            sandbox={id}
            selected={doc.savedPath || null}
            onOpen={(p, e) => request(p, false, e)}
            onNewFile={(p) => request(p, true)}
            refreshKey={treeKey}
            disabled={!!expired}
          />
        </section>

        <section class="pg-pane pg-editor" aria-label="Editor">
          <div class="pg-bar">
            <label for="pg-path" class="pg-path-label">
              File
            </label>
            <span class={`pg-dirty${dirty ? ' on' : ''}`} title={dirty ? 'Unsaved changes' : undefined} aria-hidden="true">
              ●
            </span>
            <input
              id="pg-path"
              class="pg-path"
              data-testid="file-path"
              value={path}
              placeholder="/root/notes.txt"
              spellcheck={false}
              autocomplete="off"
              aria-describedby="pg-save-status"
              onInput={(e) => setPath((e.target as HTMLInputElement).value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter') {
                  e.preventDefault();
                  saveFile();
                }
              }}
            />
            <button type="button" class="small" data-testid="save-file" onClick={saveFile} disabled={save.state === 'saving' || !!expired} title="Save (Ctrl+S, or ⌘S on a Mac)">
              Save
            </button>
          </div>
          <div class="pg-status-line">
            <span
              id="pg-save-status"
              data-testid="save-status"
              class={`pg-save-status ${save.state === 'error' ? 'bad' : save.state === 'saved' && !dirty ? 'ok' : ''}`}
              role="status"
              aria-live="polite"
            >
              {saveText}
            </span>
            <span class="muted pg-lang">{opening ? `Opening ${opening}…` : languageOf(path) === 'plain' ? 'Plain text' : languageOf(path)}</span>
          </div>
          {fileError && (
            <div class="pg-file-error">
              <ErrorMessage message={fileError} />
            </div>
          )}
          {pending && (
            <div class="notice pg-pending" role="alert">
              <span>
                {path.trim() || 'This buffer'} has unsaved changes.
              </span>
              <div class="row">
                <button type="button" class="small" onClick={() => (pending.isNew ? newFile(pending.path) : openFile(pending.path, pending.entry))}>
                  Discard them and open {pending.path.split('/').pop()}
                </button>
                <button type="button" class="secondary small" onClick={() => setPending(null)}>
                  Keep editing
                </button>
              </div>
            </div>
          )}
          <div class="pg-editor-body">
            <LazyEditor
              docKey={doc.key}
              text={doc.text}
              path={path}
              label={path ? `Contents of ${path}` : 'New file contents'}
              placeholder="Open a file from the tree, or type here and choose a path above to save it."
              onDirty={setEditorDirty}
              onSave={() => saveRef.current()}
              onHandle={(h) => (editor.current = h)}
            />
          </div>
        </section>

        <section class="pg-pane pg-term-pane" aria-label="Terminal">
          <div class="pg-term">
            <Terminal sandbox={id} name="main" node="playground" active />
          </div>
        </section>
      </div>
    </main>
  );
}
