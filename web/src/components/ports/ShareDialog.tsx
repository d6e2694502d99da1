// The share dialog of a port: a public link that works without signing in until it
// expires (POST …/ports/{port}/shares), shown to copy; the port's links still valid are
// listed and can be revoked (DELETE …/shares/{id}). A modal <dialog>: Esc closes it.
import { useEffect, useId, useRef, useState } from 'preact/hooks';

import { api, errorText, type Share } from '../../api';
import { duration } from '../../format';
import { normalPath } from '../../lib/tabs';
import { copyText } from '../terminal/clipboard';
import { ErrorMessage } from '../ui';
import './Ports.css';

const TTLS: [string, string][] = [
  ['15m', '15 minutes'],
  ['1h', '1 hour'],
  ['8h', '8 hours'],
  ['24h', '1 day'],
];

function expiry(s: Share, now: number): string {
  const left = s.expires_at_ms - now;
  return left < 60_000 ? 'expires in less than a minute' : `expires in ${duration(left)}`;
}

export interface ShareDialogProps {
  sandbox: string;
  port: number;
  /** Where the link lands (default `/`). */
  path?: string | null;
  /** What is shared, for the sentences: "port 80 of node01". */
  what: string;
  onClose: () => void;
}

export function ShareDialog(props: ShareDialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const uid = useId();
  const [ttl, setTtl] = useState('1h');
  const [path, setPath] = useState(normalPath(props.path));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [made, setMade] = useState<Share | null>(null);
  const [copied, setCopied] = useState('');
  const [shares, setShares] = useState<Share[] | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const onClose = useRef(props.onClose);
  onClose.current = props.onClose;

  useEffect(() => {
    const d = ref.current!;
    d.showModal();
    const closed = () => onClose.current();
    d.addEventListener('close', closed);
    return () => {
      d.removeEventListener('close', closed);
      if (d.open) d.close();
    };
  }, []);

  const load = () => {
    setListError(null);
    api
      .shares(props.sandbox)
      .then((r) => setShares(r.items.filter((s) => s.port === props.port && s.expires_at_ms > Date.now())))
      .catch((e) => setListError(errorText(e)));
  };
  useEffect(load, [props.sandbox, props.port]);

  const create = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setCopied('');
    try {
      const s = await api.createShare(props.sandbox, props.port, ttl, normalPath(path));
      setMade(s);
      load();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (s: Share) => {
    setListError(null);
    try {
      await api.deleteShare(props.sandbox, s.id);
      if (made?.id === s.id) setMade(null);
      load();
    } catch (e) {
      setListError(errorText(e));
    }
  };

  const copy = async (url: string) => setCopied((await copyText(url)) ? 'Copied' : 'Copying failed; select the link and copy it.');

  const now = Date.now();
  return (
    <dialog ref={ref} class="share-dialog" aria-labelledby={`${uid}-title`} data-testid="share-dialog">
      <h2 id={`${uid}-title`}>Share {props.what}</h2>
      <p class="muted">Anyone with the link can open {props.what} without signing in, until the link expires or you revoke it.</p>
      <form class="share-form" onSubmit={create}>
        <div class="field">
          <label for={`${uid}-ttl`}>Expires after</label>
          <select id={`${uid}-ttl`} data-testid="share-ttl" value={ttl} onChange={(e) => setTtl((e.target as HTMLSelectElement).value)}>
            {TTLS.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </div>
        <div class="field share-path">
          <label for={`${uid}-path`}>Opens at</label>
          <input id={`${uid}-path`} value={path} spellcheck={false} autocomplete="off" onInput={(e) => setPath((e.target as HTMLInputElement).value)} />
        </div>
        <button type="submit" disabled={busy} data-testid="share-create">
          {busy ? 'Creating…' : 'Create link'}
        </button>
      </form>
      {error && <ErrorMessage message={error} />}
      {made?.url && (
        <div class="share-made">
          <label for={`${uid}-url`}>Share link ({expiry(made, now)})</label>
          <div class="row">
            <input
              id={`${uid}-url`}
              class="share-url"
              data-testid="share-url"
              readOnly
              value={made.url}
              onFocus={(e) => (e.target as HTMLInputElement).select()}
            />
            <button type="button" class="secondary" onClick={() => copy(made.url!)}>
              Copy
            </button>
          </div>
          <span class="muted" role="status">
            {copied}
          </span>
        </div>
      )}
      <h3>Links to this port still valid</h3>
      {listError && <ErrorMessage message={listError} retry={load} />}
      {shares === null && !listError && <p class="muted">Loading…</p>}
      {shares?.length === 0 && <p class="muted">None yet.</p>}
      {shares && shares.length > 0 && (
        <ul class="share-list" data-testid="share-list">
          {shares.map((s) => {
            const made = new Date(s.created_at_ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
            return (
              <li key={s.id} data-testid="share-item" data-id={s.id}>
                <span class="share-link" title={`Opens ${s.path}`}>
                  {s.path}
                </span>
                <span class="muted" title={`Made at ${new Date(s.created_at_ms).toLocaleString()}, expires at ${new Date(s.expires_at_ms).toLocaleString()}`}>
                  made {made}, {expiry(s, now)}
                </span>
                <button type="button" class="ghost small" aria-label={`Revoke the link to ${s.path} made at ${made}`} onClick={() => revoke(s)}>
                  Revoke
                </button>
              </li>
            );
          })}
        </ul>
      )}
      <div class="row share-end">
        <button type="button" class="secondary" onClick={() => ref.current?.close()}>
          Close
        </button>
      </div>
    </dialog>
  );
}
