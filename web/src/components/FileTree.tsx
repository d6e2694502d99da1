// The file tree of the playground and of a lab's editor tabs: folders of a sandbox listed
// lazily (GET …/dir?path=) as they are expanded, starting at a root such as /root; files
// open on click. A refresh button lists the expanded folders again, and "New file" asks
// for a name and opens an empty buffer at that path (created on the first save).
// Files both ways: "Upload" (or a drop onto the tree, or onto a folder in it) sends files
// into the folder last clicked (components/Uploads.tsx); "Download" saves the entry last
// clicked, a folder as a .tar.gz archive.
import { useEffect, useId, useRef, useState } from 'preact/hooks';

import { api, errorText, type DirEntry } from '../api';
import { bytes } from '../format';
import { saveBlob } from '../lib/transfer';
import { ErrorMessage } from './ui';
import { UploadList, useUploads, type Picked } from './Uploads';
import './FileTree.css';

type Listing = { state: 'loading' } | { state: 'ok'; items: DirEntry[] } | { state: 'error'; message: string };

export interface FileTreeProps {
  sandbox: string;
  /** The folder shown at the top (default `/root`). */
  root?: string;
  /** The open file, highlighted. */
  selected?: string | null;
  onOpen: (path: string, entry: DirEntry) => void;
  /** A path chosen with "New file". */
  onNewFile: (path: string) => void;
  /** Bump to list the expanded folders again (e.g. after a save). */
  refreshKey?: number;
  disabled?: boolean;
}

export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** Folders first, then by name. */
function sorted(items: DirEntry[]): DirEntry[] {
  const dir = (e: DirEntry) => (e.kind === 'dir' ? 0 : 1);
  return [...items].sort((a, b) => dir(a) - dir(b) || a.name.localeCompare(b.name));
}

const OPENABLE = new Set(['file', 'symlink']);

function icon(e: DirEntry, open: boolean): string {
  if (e.kind === 'dir') return open ? '▾' : '▸';
  if (e.kind === 'symlink') return '↪';
  if (e.kind === 'file') return '·';
  return '◦';
}

function describe(e: DirEntry): string {
  switch (e.kind) {
    case 'dir':
      return 'folder';
    case 'file':
      return `file, ${bytes(e.size)}`;
    case 'symlink':
      return 'symbolic link';
    default:
      return `${e.kind.replace('_', ' ')} (cannot be opened)`;
  }
}

export function FileTree(props: FileTreeProps) {
  const root = props.root ?? '/root';
  const [dirs, setDirs] = useState<Map<string, Listing>>(new Map());
  const [expanded, setExpanded] = useState<Set<string>>(new Set([root]));
  /** Where "New file" creates: the folder last clicked, else the root. */
  const [cwd, setCwd] = useState(root);
  const [asking, setAsking] = useState(false);
  const [name, setName] = useState('');
  const [nameError, setNameError] = useState<string | null>(null);
  const nameInput = useRef<HTMLInputElement>(null);
  const nameId = useId();
  /** What "Download" saves: the entry last clicked, else the root folder. */
  const [picked, setPicked] = useState<{ path: string; dir: boolean }>({ path: root, dir: true });
  const [downloading, setDownloading] = useState(false);
  const [transferError, setTransferError] = useState<string | null>(null);
  /** The folder a drag in progress would upload into. */
  const [dropInto, setDropInto] = useState<string | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const uploads = useUploads(props.sandbox, (dir) => {
    setExpanded((s) => (s.has(dir) ? s : new Set(s).add(dir)));
    list(dir);
  });

  const list = async (path: string) => {
    setDirs((m) => {
      const n = new Map(m);
      // Keep showing the old listing while refreshing (no layout jump).
      if (!n.has(path) || n.get(path)!.state === 'error') n.set(path, { state: 'loading' });
      return n;
    });
    let listing: Listing;
    try {
      const r = await api.listDir(props.sandbox, path);
      listing = { state: 'ok', items: sorted(r.items) };
    } catch (e) {
      listing = { state: 'error', message: errorText(e) };
    }
    setDirs((m) => new Map(m).set(path, listing));
  };

  useEffect(() => {
    list(root);
  }, [props.sandbox, root]);

  // Refresh: list every expanded folder again.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    refresh();
  }, [props.refreshKey]);

  const refresh = () => {
    for (const p of expanded) list(p);
  };

  const toggle = (path: string) => {
    setCwd(path);
    setPicked({ path, dir: true });
    const open = expanded.has(path);
    const next = new Set(expanded);
    if (open) next.delete(path);
    else {
      next.add(path);
      if (!dirs.has(path) || dirs.get(path)!.state === 'error') list(path);
    }
    setExpanded(next);
  };

  useEffect(() => {
    if (asking) nameInput.current?.focus();
  }, [asking]);

  const submitName = (e: Event) => {
    e.preventDefault();
    const n = name.trim();
    if (!n) return setNameError('Type a file name, for example notes.txt.');
    const path = n.startsWith('/') ? n : joinPath(cwd, n);
    if (path.split('/').some((c) => c === '..') || path.endsWith('/') || path.includes('\0'))
      return setNameError('The name must not contain “..” or end with “/”.');
    setAsking(false);
    setName('');
    setNameError(null);
    props.onNewFile(path.replace(/\/{2,}/g, '/'));
  };

  const renderDir = (path: string, depth: number) => {
    const l = dirs.get(path);
    if (!l || l.state === 'loading')
      return (
        <div class="ft-note" style={{ paddingLeft: `${8 + depth * 14}px` }}>
          Loading…
        </div>
      );
    if (l.state === 'error')
      return depth === 0 ? (
        <ErrorMessage message={l.message} retry={() => list(path)} />
      ) : (
        <div class="ft-note ft-error" style={{ paddingLeft: `${8 + depth * 14}px` }}>
          {l.message}
        </div>
      );
    if (l.items.length === 0)
      return (
        <div class="ft-note" style={{ paddingLeft: `${8 + depth * 14}px` }}>
          Empty folder
        </div>
      );
    return (
      <ul role={depth === 0 ? undefined : 'group'}>
        {l.items.map((e) => {
          const p = joinPath(path, e.name);
          const isDir = e.kind === 'dir';
          const open = isDir && expanded.has(p);
          const openable = isDir || OPENABLE.has(e.kind);
          return (
            <li key={p}>
              <button
                type="button"
                class={`ft-entry${props.selected === p ? ' selected' : ''}${isDir ? ' dir' : ''}`}
                style={{ paddingLeft: `${6 + depth * 14}px` }}
                data-testid="file-entry"
                data-path={p}
                data-kind={e.kind}
                aria-expanded={isDir ? open : undefined}
                aria-current={props.selected === p ? 'true' : undefined}
                disabled={!openable || props.disabled}
                title={`${p} (${describe(e)})`}
                onClick={() => {
                  if (isDir) return toggle(p);
                  setCwd(path);
                  setPicked({ path: p, dir: false });
                  props.onOpen(p, e);
                }}
              >
                <span class="ft-icon" aria-hidden="true">
                  {icon(e, open)}
                </span>
                <span class="ft-name">{e.name}</span>
              </button>
              {open && renderDir(p, depth + 1)}
            </li>
          );
        })}
      </ul>
    );
  };

  const download = async () => {
    setDownloading(true);
    setTransferError(null);
    try {
      const got = picked.dir ? await api.downloadArchive(props.sandbox, picked.path) : await api.downloadFile(props.sandbox, picked.path);
      saveBlob(got.blob, got.name);
    } catch (e) {
      setTransferError(`${picked.path} could not be downloaded: ${errorText(e)}`);
    } finally {
      setDownloading(false);
    }
  };

  /** The folder a drop at `target` goes into: the folder (or the file's folder) under the
   * pointer, else the folder last clicked. */
  const dropTarget = (target: EventTarget | null): string => {
    const entry = (target as Element | null)?.closest?.<HTMLElement>('[data-testid="file-entry"]');
    const p = entry?.dataset.path;
    if (!p) return cwd;
    return entry.dataset.kind === 'dir' ? p : parentOf(p);
  };
  const carriesFiles = (e: DragEvent) => !props.disabled && !!e.dataTransfer?.types.includes('Files');
  const onDragOver = (e: DragEvent) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    e.dataTransfer!.dropEffect = 'copy';
    const into = dropTarget(e.target);
    if (into !== dropInto) setDropInto(into);
  };
  const onDragLeave = (e: DragEvent) => {
    if (!(e.currentTarget as Element).contains(e.relatedTarget as Node | null)) setDropInto(null);
  };
  const onDrop = (e: DragEvent) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    setDropInto(null);
    const dt = e.dataTransfer!;
    const dropped: Picked[] = [];
    // A dropped folder arrives as a File that cannot be read: its entry tells.
    const items = Array.from(dt.items ?? []).filter((i) => i.kind === 'file');
    if (items.length) {
      for (const item of items) {
        const file = item.getAsFile();
        if (file) dropped.push({ file, folder: !!item.webkitGetAsEntry?.()?.isDirectory });
      }
    } else for (const file of Array.from(dt.files)) dropped.push({ file });
    if (dropped.length) uploads.add(dropped, dropTarget(e.target));
  };

  return (
    <nav
      class={`file-tree${dropInto ? ' ft-dropping' : ''}`}
      data-testid="file-tree"
      aria-label="Files in the sandbox"
      onDragOver={onDragOver}
      onDragLeave={onDragLeave}
      onDrop={onDrop}
    >
      <div class="ft-head">
        <span class="ft-root" title={root}>
          {root}
        </span>
        <button type="button" class="ghost small" onClick={refresh} aria-label="Refresh the file list" title="Refresh" data-testid="refresh-files" disabled={props.disabled}>
          ↻
        </button>
      </div>
      <div class="ft-actions">
        {dropInto ? (
          <span class="ft-drop-note" data-testid="drop-note">
            Drop to upload into {dropInto}
          </span>
        ) : (
          <>
            <button
              type="button"
              class="ghost small"
              onClick={() => {
                setAsking(!asking);
                setNameError(null);
              }}
              aria-expanded={asking}
              disabled={props.disabled}
              data-testid="new-file"
            >
              New file
            </button>
            <button
              type="button"
              class="ghost small"
              onClick={() => fileInput.current?.click()}
              disabled={props.disabled}
              data-testid="upload"
              title={`Upload files into ${cwd} (or drop them onto the tree); up to 64 MiB each`}
            >
              Upload
            </button>
            <button
              type="button"
              class="ghost small"
              onClick={download}
              disabled={props.disabled || downloading}
              data-testid="download"
              data-path={picked.path}
              title={picked.dir ? `Download ${picked.path} as a .tar.gz archive` : `Download ${picked.path}`}
            >
              {downloading ? 'Downloading…' : 'Download'}
            </button>
          </>
        )}
        <input
          ref={fileInput}
          type="file"
          multiple
          hidden
          data-testid="upload-input"
          onChange={(e) => {
            const input = e.currentTarget as HTMLInputElement;
            const files = Array.from(input.files ?? []);
            input.value = '';
            if (files.length) uploads.add(files.map((file) => ({ file })), cwd);
          }}
        />
      </div>
      {transferError && (
        <div class="ft-note ft-error" role="alert">
          {transferError}
        </div>
      )}
      <UploadList items={uploads.items} announce={uploads.announce} onClear={uploads.clear} />
      {asking && (
        <form class="ft-new" onSubmit={submitName}>
          <label for={nameId}>New file in {cwd}</label>
          <div class="row">
            <input
              id={nameId}
              ref={nameInput}
              value={name}
              placeholder="notes.txt"
              autocomplete="off"
              spellcheck={false}
              onInput={(e) => setName((e.target as HTMLInputElement).value)}
              onKeyDown={(e) => e.key === 'Escape' && setAsking(false)}
            />
            <button type="submit" class="small">
              Open
            </button>
          </div>
          {nameError && (
            <div class="ft-note ft-error" role="alert">
              {nameError}
            </div>
          )}
        </form>
      )}
      <div class="ft-body">{renderDir(root, 0)}</div>
    </nav>
  );
}
