// A port of a sandbox shown in the page: an iframe of the proxy (another origin than the
// UI's, so the app runs unsandboxed and still cannot reach the learner's Sandlab session)
// with a toolbar: reload, the path, open in a new browser tab, share.
//
// Every (re)load asks for a fresh one-time sign-in link (POST …/ports/{port}/open): a link
// is used once by the proxy and never kept. Styles: Ports.css.
import { useEffect, useId, useRef, useState } from 'preact/hooks';

import { api, errorText } from '../../api';
import { normalPath } from '../../lib/tabs';
import { ErrorMessage, Spinner } from '../ui';
import { ShareDialog } from './ShareDialog';
import './Ports.css';

type Load = { state: 'opening' } | { state: 'ok'; url: string; seq: number } | { state: 'error'; message: string };

export interface ServiceViewProps {
  sandbox: string;
  port: number;
  /** Where it lands (default `/`). */
  path: string | null;
  /** The iframe's title (the tab's). */
  title: string;
  /** What it shows, for sentences: "port 80 of node01". */
  what: string;
  /** The learner chose another path (the view reloads when `path` changes). */
  onPath: (path: string) => void;
}

export function ServiceView(props: ServiceViewProps) {
  const uid = useId();
  const path = normalPath(props.path);
  const [load, setLoad] = useState<Load>({ state: 'opening' });
  const [reloads, setReloads] = useState(0);
  const [draft, setDraft] = useState(path);
  const [sharing, setSharing] = useState(false);
  const [outsideError, setOutsideError] = useState<string | null>(null);
  // The latest load: an older link answering later is dropped (and none after unmount).
  const seq = useRef(0);
  useEffect(() => () => void (seq.current = -1), []);

  useEffect(() => setDraft(path), [path]);

  useEffect(() => {
    const mine = ++seq.current;
    setLoad({ state: 'opening' });
    api.openPort(props.sandbox, props.port, path).then(
      (r) => mine === seq.current && setLoad({ state: 'ok', url: r.url, seq: mine }),
      (e) => mine === seq.current && setLoad({ state: 'error', message: errorText(e) }),
    );
  }, [props.sandbox, props.port, path, reloads]);

  const reload = () => setReloads((n) => n + 1);

  const go = (e: Event) => {
    e.preventDefault();
    const p = normalPath(draft);
    setDraft(p);
    if (p === path) reload();
    else props.onPath(p);
  };

  // The window is opened inside the click (so no pop-up blocker stops it), then sent to a
  // fresh link once there is one; it gets no handle on this page.
  const openOutside = async () => {
    setOutsideError(null);
    const w = window.open('', '_blank');
    if (!w) return setOutsideError('The browser blocked the new tab; allow pop-ups for this site and try again.');
    w.opener = null;
    try {
      const r = await api.openPort(props.sandbox, props.port, normalPath(draft));
      w.location.href = r.url;
    } catch (e) {
      w.close();
      setOutsideError(errorText(e));
    }
  };

  return (
    <div class="svc" data-testid="service-view" data-port={props.port}>
      <div class="svc-bar" role="toolbar" aria-label={`${props.title} controls`}>
        <button type="button" class="ghost small" onClick={reload} aria-label="Reload" title="Reload (with a fresh sign-in link)" data-testid="service-reload">
          ↻
        </button>
        <form class="svc-path" onSubmit={go}>
          <label for={`${uid}-path`} class="sr-only">
            Path
          </label>
          <span class="svc-port" aria-hidden="true">
            :{props.port}
          </span>
          <input
            id={`${uid}-path`}
            data-testid="service-path"
            value={draft}
            spellcheck={false}
            autocomplete="off"
            onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
          />
        </form>
        <button type="button" class="ghost small" onClick={openOutside} aria-label="Open in a new tab" title="Open in a new browser tab" data-testid="service-open-outside">
          ↗
        </button>
        <button type="button" class="secondary small" onClick={() => setSharing(true)} data-testid="service-share" title={`Make a public link to ${props.what}`}>
          Share
        </button>
      </div>
      {outsideError && (
        <div class="svc-msg">
          <ErrorMessage message={outsideError} />
        </div>
      )}
      {load.state === 'opening' && <Spinner label={`Opening ${props.what}`} />}
      {load.state === 'error' && (
        <div class="svc-msg">
          <ErrorMessage message={load.message} retry={reload} />
        </div>
      )}
      {load.state === 'ok' && <iframe key={load.seq} class="svc-frame" src={load.url} title={props.title} referrerpolicy="no-referrer" data-testid="service-frame" />}
      {sharing && <ShareDialog sandbox={props.sandbox} port={props.port} path={draft} what={props.what} onClose={() => setSharing(false)} />}
    </div>
  );
}
