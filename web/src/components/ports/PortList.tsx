// The ports listening inside a sandbox, each with Open (and Share), and a form to open a
// port by its number (one not detected yet, or a server that listens elsewhere).
// Styles: Ports.css.
import { useId, useState } from 'preact/hooks';

import { validPort } from '../../lib/tabs';
import { listening, type Ports } from './usePorts';
import './Ports.css';

export interface PortListProps {
  ports: Ports | undefined;
  onOpen: (port: number) => void;
  onShare?: (port: number) => void;
  /** The node the ports are of, named in the buttons when there are several. */
  node?: string;
}

export function PortList(props: PortListProps) {
  const list = listening(props.ports?.items ?? null);
  const of = props.node ? ` of ${props.node}` : '';
  return (
    <div class="port-list" data-testid="ports" data-node={props.node}>
      {!props.ports?.items && !props.ports?.error && <p class="muted port-note">Looking for listening ports…</p>}
      {props.ports?.error && <p class="port-note port-error">{props.ports.error}</p>}
      {props.ports?.items && list.length === 0 && (
        <p class="muted port-note">
          No TCP port is listening{of} yet. Start a server (for example <code>python3 -m http.server 8000</code>) and it shows up here.
        </p>
      )}
      {list.length > 0 && (
        <ul aria-label={`Listening ports${of}`}>
          {list.map((p) => (
            <li key={p.port} class="port-item" data-testid="port-item" data-port={p.port}>
              <span class="port-num">{p.port}</span>
              <span class="muted port-addr" title={`Listening on ${p.addresses.join(', ')}`}>
                {p.addresses.join(', ')}
              </span>
              <button type="button" class="small" aria-label={`Open port ${p.port}${of}`} onClick={() => props.onOpen(p.port)}>
                Open
              </button>
              {props.onShare && (
                <button type="button" class="secondary small" aria-label={`Share port ${p.port}${of}`} onClick={() => props.onShare!(p.port)}>
                  Share
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** Open a port typed by hand, on one of `nodes` (a choice shown when there are several). */
export function PortForm(props: { nodes: string[]; onOpen: (node: string, port: number, path: string | null) => void }) {
  const uid = useId();
  const [node, setNode] = useState(props.nodes[0] ?? '');
  const [port, setPort] = useState('');
  const [path, setPath] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = (e: Event) => {
    e.preventDefault();
    const n = Number(port.trim());
    if (!validPort(n)) return setError('Type a port number from 1 to 65535.');
    setError(null);
    props.onOpen(node, n, path.trim() || null);
  };
  return (
    <form class="port-form" onSubmit={submit} data-testid="port-form">
      {props.nodes.length > 1 && (
        <div class="field">
          <label for={`${uid}-node`}>Machine</label>
          <select id={`${uid}-node`} value={node} onChange={(e) => setNode((e.target as HTMLSelectElement).value)}>
            {props.nodes.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </div>
      )}
      <div class="field port-form-num">
        <label for={`${uid}-port`}>Port number</label>
        <input
          id={`${uid}-port`}
          inputMode="numeric"
          pattern="[0-9]*"
          value={port}
          placeholder="8080"
          autocomplete="off"
          aria-describedby={error ? `${uid}-error` : undefined}
          onInput={(e) => setPort((e.target as HTMLInputElement).value)}
        />
      </div>
      <div class="field port-form-path">
        <label for={`${uid}-path`}>Path</label>
        <input id={`${uid}-path`} value={path} placeholder="/" spellcheck={false} autocomplete="off" onInput={(e) => setPath((e.target as HTMLInputElement).value)} />
      </div>
      <button type="submit" class="small" aria-label="Open this port">
        Open
      </button>
      {error && (
        <p id={`${uid}-error`} class="port-note port-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
