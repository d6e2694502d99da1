// The file panes of the playground and of a lab's editor tabs: the tree and the editor,
// with open / new / save (styles: pages/Playground.css).
//
// Every opened document has a key; a file read or a save that finishes after another
// document was opened is dropped (it must not replace or mark the new one), a newer click
// wins over an older read still on the way, and one save runs at a time.
import { useEffect, useId, useRef, useState } from 'preact/hooks';

import { api, ApiError, errorText, type DirEntry } from '../api';
import { bytes } from '../format';
import { languageOf } from '../lib/language';
import type { EditorHandle } from './Editor';
import { FileTree } from './FileTree';
import { LazyEditor } from './LazyEditor';
import { ErrorMessage } from './ui';

/** The editor opens text files up to this size. */
export const MAX_EDIT_BYTES = 1 << 20;

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
const freshDoc = (text: string, savedPath: string, isNew: boolean): Doc => ({ key: `d${++docCounter}`, text, savedPath, isNew });

/** Why `p` cannot be saved, or null. */
function badPath(p: string): string | null {
  if (!p) return 'Type a path for the file first, for example /root/notes.txt.';
  if (!p.startsWith('/') || p.endsWith('/') || p.split('/').some((c) => c === '..'))
    return 'The path must be absolute (start with /), name a file, and not contain “..”.';
  return null;
}

/** What is at `p` in sandbox `id`: its kind, or 'missing' (a missing parent included). */
async function kindAt(id: string, p: string): Promise<DirEntry['kind'] | 'missing'> {
  const slash = p.lastIndexOf('/');
  const parent = slash <= 0 ? '/' : p.slice(0, slash);
  const name = p.slice(slash + 1);
  try {
    const list = await api.listDir(id, parent);
    return list.items.find((e) => e.name === name)?.kind ?? 'missing';
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.code === 'not_a_directory')) return 'missing';
    throw e;
  }
}

export interface FilePanesProps {
  sandbox: string;
  /** The sandbox no longer exists. */
  gone: boolean;
  /** The folder the tree shows (default `/root`). */
  root?: string;
  /** Whether these panes are on screen (default true): only those answer Ctrl+S. */
  active?: boolean;
}

/** The tree and editor panes of sandbox `sandbox`. */
export function FilePanes(props: FilePanesProps) {
  const id = props.sandbox;
  const uid = useId();
  const pathId = `${uid}-path`;
  const statusId = `${uid}-status`;
  const active = useRef(props.active ?? true);
  active.current = props.active ?? true;
  const [doc, setDocState] = useState<Doc>(() => freshDoc('', '', true));
  const [path, setPath] = useState('');
  const [editorDirty, setEditorDirty] = useState(false);
  const [save, setSave] = useState<SaveState>({ state: 'idle' });
  const [fileError, setFileError] = useState<string | null>(null);
  const [opening, setOpening] = useState<string | null>(null);
  const [pending, setPending] = useState<{ path: string; entry?: DirEntry; isNew: boolean } | null>(null);
  // A save under another file's path waits for "Replace" here.
  const [replacing, setReplacing] = useState<string | null>(null);
  const [treeKey, setTreeKey] = useState(0);
  const editor = useRef<EditorHandle | null>(null);
  // The open document's key, read by requests when they finish (state would be stale).
  const openKey = useRef(doc.key);
  // The latest open request: an older read answering later is ignored.
  const openSeq = useRef(0);
  // A save is running (a ref: two quick Ctrl+S in one render both see the same state).
  const saving = useRef(false);

  const setDoc = (d: Doc) => {
    openKey.current = d.key;
    setDocState(d);
    setPath(d.savedPath);
    setSave({ state: 'idle' });
  };

  // Unsaved: the text changed, or an existing file's path was edited (a pending "save as").
  const dirty = editorDirty || (!doc.isNew && path.trim() !== doc.savedPath);

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
    const seq = ++openSeq.current;
    setFileError(null);
    setPending(null);
    if (entry && entry.kind === 'file' && entry.size > MAX_EDIT_BYTES) {
      setOpening(null);
      setFileError(`${p} is ${bytes(entry.size)}; the editor opens files up to 1 MiB.`);
      return;
    }
    setOpening(p);
    try {
      const data = await api.readFile(id, p);
      if (seq !== openSeq.current) return; // another file was clicked since
      if (data.length > MAX_EDIT_BYTES) return setFileError(`${p} is ${bytes(data.length)}; the editor opens files up to 1 MiB.`);
      if (data.includes(0)) return setFileError(`${p} looks like a binary file (it contains NUL bytes); the editor opens text files only.`);
      setDoc(freshDoc(new TextDecoder('utf-8').decode(data), p, false));
    } catch (e) {
      if (seq === openSeq.current) setFileError(errorText(e));
    } finally {
      if (seq === openSeq.current) setOpening(null);
    }
  };

  const newFile = (p: string) => {
    ++openSeq.current; // a read still on the way must not replace the new buffer
    setOpening(null);
    setFileError(null);
    setPending(null);
    setDoc(freshDoc('', '', true));
    setPath(p);
    setTimeout(() => editor.current?.focus(), 0);
  };

  /** Opens (or creates) `p` unless there are unsaved changes, in which case it asks first. */
  const request = (p: string, isNew: boolean, entry?: DirEntry) => {
    if (dirty) setPending({ path: p, entry, isNew });
    else if (isNew) newFile(p);
    else openFile(p, entry);
  };

  /** The File box's Enter: opens the typed path (asking first when there are unsaved
   * changes), or names the buffer when nothing is there yet. Never writes. */
  const openTyped = async () => {
    const p = path.trim();
    const bad = badPath(p);
    if (bad) return setSave({ state: 'error', message: bad });
    if (p === doc.savedPath) return editor.current?.focus();
    setFileError(null);
    try {
      const kind = await kindAt(id, p);
      // Only edited text counts here: the path itself was just typed.
      if (kind === 'file' || kind === 'symlink') {
        if (editorDirty) setPending({ path: p, isNew: false });
        else openFile(p);
      }
      else if (kind === 'missing') setSave({ state: 'error', message: `${p} does not exist yet; Save creates it with this text.` });
      else setFileError(`${p} is not a file (it is a ${kind.replace('_', ' ')}).`);
    } catch (e) {
      setFileError(errorText(e));
    }
  };

  /** Saves the buffer at the File box's path; a path other than the one it came from that
   * already holds a file is replaced only after "Replace" (`replace`). */
  const saveFile = async (replace = false) => {
    const h = editor.current;
    if (!h || saving.current) return;
    const p = path.trim();
    if (props.gone) {
      setSave({ state: 'error', message: 'The sandbox is gone, so the file cannot be saved; copy the text elsewhere.' });
      return;
    }
    const bad = badPath(p);
    if (bad) return setSave({ state: 'error', message: bad });
    setReplacing(null);
    const key = openKey.current;
    const snap = h.snapshot();
    saving.current = true;
    setSave({ state: 'saving' });
    try {
      if (!replace && p !== doc.savedPath) {
        const kind = await kindAt(id, p);
        if (kind !== 'missing') {
          if (openKey.current === key) {
            setSave({ state: 'idle' });
            setReplacing(p);
          }
          return;
        }
      }
      await api.writeFile(id, p, snap.text);
      setTreeKey((k) => k + 1);
      if (openKey.current !== key) return; // another document is open now: leave it alone
      h.markSaved(snap);
      setDocState((d) => (d.key === key ? { ...d, savedPath: p, isNew: false } : d));
      setSave({ state: 'saved', at: Date.now() });
    } catch (e) {
      if (openKey.current === key) setSave({ state: 'error', message: errorText(e) });
      else setFileError(`${p} was not saved: ${errorText(e)}`);
    } finally {
      saving.current = false;
      // The document was switched while saving: its "Saving…" must not stay on the new one.
      if (openKey.current !== key) setSave((s) => (s.state === 'saving' ? { state: 'idle' } : s));
    }
  };
  const saveRef = useRef(saveFile);
  saveRef.current = saveFile;

  // Ctrl/Cmd+S anywhere on the page (the editor handles it itself when focused).
  useEffect(() => {
    const h = (e: KeyboardEvent) => {
      if (!active.current || e.defaultPrevented || !(e.ctrlKey || e.metaKey) || e.altKey || e.key.toLowerCase() !== 's') return;
      if ((e.target as Element | null)?.closest?.('.term')) return; // Ctrl+S belongs to the shell there
      e.preventDefault();
      saveRef.current();
    };
    window.addEventListener('keydown', h);
    return () => window.removeEventListener('keydown', h);
  }, []);

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

  return (
    <>
      <section class="pg-pane pg-tree" aria-label="Files">
        <FileTree
          sandbox={id}
          root={props.root}
          selected={doc.savedPath || null}
          onOpen={(p, e) => request(p, false, e)}
          onNewFile={(p) => request(p, true)}
          refreshKey={treeKey}
          disabled={props.gone}
        />
      </section>

      <section class="pg-pane pg-editor" aria-label="Editor">
        <div class="pg-bar">
          <label for={pathId} class="pg-path-label">
            File
          </label>
          <span class={`pg-dirty${dirty ? ' on' : ''}`} title={dirty ? 'Unsaved changes' : undefined} aria-hidden="true">
            ●
          </span>
          <input
            id={pathId}
            class="pg-path"
            data-testid="file-path"
            value={path}
            placeholder="/root/notes.txt"
            spellcheck={false}
            autocomplete="off"
            aria-describedby={statusId}
            onInput={(e) => setPath((e.target as HTMLInputElement).value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter') {
                e.preventDefault();
                openTyped();
              }
            }}
          />
          <button type="button" class="small" data-testid="save-file" onClick={() => saveFile()} disabled={save.state === 'saving' || props.gone} title="Save (Ctrl+S, or ⌘S on a Mac)">
            Save
          </button>
        </div>
        <div class="pg-status-line">
          <span
            id={statusId}
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
        {replacing && (
          <div class="notice pg-pending" role="alert" data-testid="confirm-replace">
            <span>{replacing} already exists. Replace it with this text?</span>
            <div class="row">
              <button type="button" class="small" data-testid="replace-file" onClick={() => saveFile(true)}>
                Replace {replacing.split('/').pop()}
              </button>
              <button type="button" class="secondary small" onClick={() => setReplacing(null)}>
                Cancel
              </button>
            </div>
          </div>
        )}
        {pending && (
          <div class="notice pg-pending" role="alert">
            <span>{path.trim() || 'This buffer'} has unsaved changes.</span>
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
    </>
  );
}
