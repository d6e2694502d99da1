// Uploads into a sandbox: files queued from a file picker or a drop, sent one request per
// file (PUT …/files, one at a time), each with its progress and its result. Files over
// 64 MiB, folders and names that are no file name are refused before anything is sent.
// Styles: FileTree.css.
import { useEffect, useRef, useState } from 'preact/hooks';

import { api, errorText } from '../api';
import { bytes } from '../format';
import { uploadRefusal } from '../lib/transfer';

export type UploadState = 'waiting' | 'sending' | 'done' | 'failed' | 'refused';

export interface Upload {
  id: number;
  name: string;
  /** The folder it goes into. */
  dir: string;
  size: number;
  state: UploadState;
  /** Bytes sent so far. */
  sent: number;
  /** The result as a sentence (failed, refused). */
  message: string;
}

/** Something picked or dropped: a file, or a folder (which is refused). */
export interface Picked {
  file: File;
  folder?: boolean;
}

let counter = 0;

const joinPath = (dir: string, name: string) => (dir.endsWith('/') ? dir + name : `${dir}/${name}`);

/** The upload queue of `sandbox`; `onUploaded(dir)` after each file that arrived. */
export function useUploads(sandbox: string, onUploaded: (dir: string) => void) {
  const [items, setItems] = useState<Upload[]>([]);
  const [announce, setAnnounce] = useState('');
  const queue = useRef<{ id: number; path: string; file: File }[]>([]);
  const running = useRef(false);
  const alive = useRef(true);
  const abort = useRef<AbortController | null>(null);
  const done = useRef(onUploaded);
  done.current = onUploaded;

  // Leaving the page cancels the file being sent and forgets the rest.
  useEffect(
    () => () => {
      alive.current = false;
      queue.current = [];
      abort.current?.abort();
    },
    [],
  );

  const patch = (id: number, p: Partial<Upload>) => {
    if (alive.current) setItems((list) => list.map((u) => (u.id === id ? { ...u, ...p } : u)));
  };

  const pump = async () => {
    if (running.current) return;
    running.current = true;
    while (alive.current && queue.current.length) {
      const { id, path, file } = queue.current.shift()!;
      const dir = path.slice(0, path.lastIndexOf('/')) || '/';
      patch(id, { state: 'sending' });
      const ac = new AbortController();
      abort.current = ac;
      try {
        await api.uploadFile(sandbox, path, file, (sent) => patch(id, { sent }), ac.signal);
        patch(id, { state: 'done', sent: file.size, message: `Uploaded to ${path}.` });
        if (alive.current) {
          setAnnounce(`${file.name} uploaded.`);
          done.current(dir);
        }
      } catch (e) {
        patch(id, { state: 'failed', message: errorText(e) });
        if (alive.current) setAnnounce(`${file.name} was not uploaded: ${errorText(e)}`);
      }
    }
    abort.current = null;
    running.current = false;
  };

  /** Queues `picked` for the folder `dir`, refusing what cannot be sent. */
  const add = (picked: Picked[], dir: string) => {
    const added: Upload[] = picked.map(({ file, folder }) => {
      const refusal = folder ? `${file.name} is a folder; upload the files in it instead.` : uploadRefusal(file.name, file.size);
      const u: Upload = { id: ++counter, name: file.name, dir, size: file.size, state: refusal ? 'refused' : 'waiting', sent: 0, message: refusal ?? '' };
      if (!refusal) queue.current.push({ id: u.id, path: joinPath(dir, file.name), file });
      return u;
    });
    setItems((list) => [...list, ...added]);
    const refused = added.filter((u) => u.state === 'refused');
    if (refused.length) setAnnounce(refused.map((u) => u.message).join(' '));
    pump();
  };

  const clear = () => setItems((list) => list.filter((u) => u.state === 'waiting' || u.state === 'sending'));

  return { items, add, clear, announce };
}

function stateText(u: Upload): string {
  switch (u.state) {
    case 'waiting':
      return 'Waiting';
    case 'sending':
      return u.size ? `${Math.floor((u.sent / u.size) * 100)} %` : 'Sending';
    case 'done':
      return 'Uploaded';
    default:
      return u.message;
  }
}

/** The uploads with their progress and results. */
export function UploadList(props: { items: Upload[]; announce: string; onClear: () => void }) {
  const busy = props.items.some((u) => u.state === 'waiting' || u.state === 'sending');
  return (
    <div class="uploads" data-testid="uploads">
      {props.items.length > 0 && (
        <>
          <div class="uploads-head">
            <span>Uploads</span>
            {!busy && (
              <button type="button" class="ghost small" onClick={props.onClear} aria-label="Clear the finished uploads">
                Clear
              </button>
            )}
          </div>
          <ul aria-label="Uploads">
            {props.items.map((u) => (
              <li key={u.id} class={`upload upload-${u.state}`} data-testid="upload-item" data-name={u.name} data-state={u.state} title={u.message || joinPath(u.dir, u.name)}>
                <span class="upload-name">
                  {u.name} <span class="muted">{bytes(u.size)}</span>
                </span>
                <span class="upload-state">{stateText(u)}</span>
                {u.state === 'sending' && <progress max={u.size || 1} value={u.sent} aria-label={`Uploading ${u.name}`} />}
              </li>
            ))}
          </ul>
        </>
      )}
      <div class="sr-only" role="status" aria-live="polite">
        {props.announce}
      </div>
    </div>
  );
}
