// What the "+" of a workbench opens: a terminal or an editor of any node, a port from the
// ports detected on each node, or a port typed by hand. A small non-modal dialog below the
// button: Esc or a click elsewhere closes it. Styles: Tabs.css.
import { useEffect, useRef } from 'preact/hooks';

import { PortForm, PortList } from '../ports/PortList';
import type { Ports } from '../ports/usePorts';

export interface MenuNode {
  name: string;
  sandbox: string;
}

export interface OpenTabMenuProps {
  nodes: MenuNode[];
  /** Ports by sandbox id. */
  ports: Record<string, Ports>;
  /** Offer terminals, and editors. */
  terminals: boolean;
  editors: boolean;
  /** Opened to pick a port (a lab's "choose a port" link): the ports come first. */
  portsFirst: boolean;
  onTerminal: (node: string) => void;
  onEditor: (node: string) => void;
  onPort: (node: string, port: number, path: string | null) => void;
  onClose: () => void;
}

export function OpenTabMenu(props: OpenTabMenuProps) {
  const ref = useRef<HTMLDivElement>(null);
  const multi = props.nodes.length > 1;

  useEffect(() => {
    const box = ref.current!;
    const first = props.portsFirst
      ? box.querySelector<HTMLElement>('.tab-menu-ports button, .tab-menu-ports input')
      : box.querySelector<HTMLElement>('button, input');
    first?.focus();
    box.scrollIntoView({ block: 'nearest' });
  }, [props.portsFirst]);

  const onKey = (e: KeyboardEvent) => {
    if (e.key !== 'Escape') return;
    e.preventDefault();
    e.stopPropagation();
    props.onClose();
  };

  const ports = (
    <section class="tab-menu-ports" aria-label="Ports">
      <h3>Ports</h3>
      {props.nodes.map((n) => (
        <div key={n.sandbox}>
          {multi && <h4>{n.name}</h4>}
          <PortList ports={props.ports[n.sandbox]} node={multi ? n.name : undefined} onOpen={(p) => props.onPort(n.name, p, null)} />
        </div>
      ))}
      <h4>By number</h4>
      <PortForm nodes={props.nodes.map((n) => n.name)} onOpen={props.onPort} />
    </section>
  );

  const kinds = (kind: 'Terminal' | 'Editor', open: (node: string) => void) => (
    <section aria-label={kind === 'Terminal' ? 'Terminals' : 'Editors'}>
      <h3>{kind === 'Terminal' ? 'Terminal' : 'Editor'}</h3>
      <div class="row">
        {props.nodes.map((n) => (
          <button key={n.name} type="button" class="secondary small" aria-label={multi ? `${kind} on ${n.name}` : undefined} onClick={() => open(n.name)}>
            {multi ? n.name : `New ${kind.toLowerCase()}`}
          </button>
        ))}
      </div>
    </section>
  );

  return (
    <div ref={ref} class="tab-menu" role="dialog" aria-label="Open a tab" data-testid="open-tab-menu" onKeyDown={onKey}>
      {props.portsFirst && ports}
      {props.terminals && kinds('Terminal', props.onTerminal)}
      {props.editors && kinds('Editor', props.onEditor)}
      {!props.portsFirst && ports}
    </div>
  );
}
