// The TCP ports listening inside sandboxes, asked every 2 s while the page shows them
// (GET /sandboxes/{id}/ports), so ports are offered as they appear.
import { useEffect, useRef, useState } from 'preact/hooks';

import { api, errorText, type PortView } from '../../api';
import { useVisiblePoll } from '../../hooks';

export interface Ports {
  /** Null until the first answer. */
  items: PortView[] | null;
  /** Why the last look failed (the last list is kept). */
  error: string | null;
}

/** A listening port with every address it listens on, for showing once. */
export interface Listening {
  port: number;
  addresses: string[];
}

const POLL_MS = 2000;

/** One entry per port (a server on 0.0.0.0 and :: is one port), lowest first. */
export function listening(items: PortView[] | null): Listening[] {
  const by = new Map<number, string[]>();
  for (const p of items ?? []) by.set(p.port, [...(by.get(p.port) ?? []), p.address]);
  return [...by.entries()].sort((a, b) => a[0] - b[0]).map(([port, addresses]) => ({ port, addresses }));
}

/** The ports of each of `sandboxes`, by sandbox id; polling stops while the page is hidden. */
export function usePorts(sandboxes: string[]): Record<string, Ports> {
  const [ports, setPorts] = useState<Record<string, Ports>>({});
  const ids = sandboxes.join(' ');
  // Answers for a list of sandboxes no longer shown are dropped; one look per sandbox at a time.
  const current = useRef(ids);
  current.current = ids;
  const inFlight = useRef(new Set<string>());
  useEffect(() => setPorts({}), [ids]);
  useEffect(
    () => () => {
      current.current = '\0'; // unmounted: no answer is applied
    },
    [],
  );

  useVisiblePoll(
    () => {
      const asked = ids;
      for (const sb of sandboxes) {
        if (inFlight.current.has(sb)) continue;
        inFlight.current.add(sb);
        api
          .ports(sb)
          .then(
            (r) => ({ items: r.items, error: null }),
            (e) => ({ error: errorText(e) }),
          )
          .then((got) => {
            inFlight.current.delete(sb);
            if (current.current !== asked) return;
            setPorts((m) => ({ ...m, [sb]: { items: m[sb]?.items ?? null, ...got } }));
          });
      }
    },
    POLL_MS,
    [ids],
  );
  return ports;
}
