// The tab bar of a workbench: a WAI-ARIA tab list (arrow keys, Home, End; Delete closes
// the focused tab), each tab with a close button, and room after it for the "+" button.
// Terminal tabs keep `data-testid="node-tab"` and `data-node` (the tests find a node's
// terminal tab by them); the others are `lab-tab`. Styles: Tabs.css.
import type { ComponentChildren } from 'preact';

import type { OpenTab } from '../../lib/tabs';
import './Tabs.css';

export const tabId = (prefix: string, key: string) => `${prefix}-tab-${key}`;
export const panelId = (prefix: string, key: string) => `${prefix}-panel-${key}`;

export interface TabBarProps {
  tabs: OpenTab[];
  active: string;
  /** Makes the element ids unique on the page. */
  idPrefix: string;
  label: string;
  onSelect: (key: string) => void;
  onClose: (key: string) => void;
  /** After the tab list (the "+" button). */
  children?: ComponentChildren;
}

export function TabBar(props: TabBarProps) {
  const focusTab = (key: string) => document.getElementById(tabId(props.idPrefix, key))?.focus();

  const onKey = (e: KeyboardEvent) => {
    const keys = props.tabs.map((t) => t.key);
    const focused = (e.target as HTMLElement).closest<HTMLElement>('[role=tab]')?.dataset.key ?? props.active;
    const i = keys.indexOf(focused);
    if (e.key === 'Delete' && i >= 0) {
      e.preventDefault();
      const next = keys[i + 1] ?? keys[i - 1];
      props.onClose(focused);
      if (next) setTimeout(() => focusTab(next), 0);
      return;
    }
    let j = -1;
    if (e.key === 'ArrowRight') j = (i + 1) % keys.length;
    else if (e.key === 'ArrowLeft') j = (i - 1 + keys.length) % keys.length;
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = keys.length - 1;
    if (j < 0 || !keys.length) return;
    e.preventDefault();
    props.onSelect(keys[j]);
    focusTab(keys[j]);
  };

  return (
    <div class="tab-bar">
      <div class="tab-list" role="tablist" aria-label={props.label} onKeyDown={onKey}>
        {props.tabs.map((t) => {
          const on = t.key === props.active;
          return (
            <div key={t.key} class={`tab-item${on ? ' active' : ''}`} role="presentation">
              <button
                type="button"
                role="tab"
                id={tabId(props.idPrefix, t.key)}
                class={`node-tab tab-kind-${t.kind}${on ? ' active' : ''}`}
                data-testid={t.kind === 'terminal' ? 'node-tab' : 'lab-tab'}
                data-key={t.key}
                data-kind={t.kind}
                data-node={t.node ?? undefined}
                data-port={t.port ?? undefined}
                aria-selected={on}
                aria-controls={panelId(props.idPrefix, t.key)}
                tabIndex={on ? 0 : -1}
                title={t.kind === 'website' ? (t.url ?? undefined) : t.kind === 'service' ? `Port ${t.port} of ${t.node}` : undefined}
                onClick={() => props.onSelect(t.key)}
              >
                <span class={`node-dot tab-dot-${t.kind}`} aria-hidden="true" />
                {t.title}
              </button>
              <button
                type="button"
                class="tab-close"
                tabIndex={-1}
                aria-label={`Close ${t.title}`}
                title={`Close ${t.title} (Delete)`}
                data-testid="close-tab"
                onClick={() => props.onClose(t.key)}
              >
                ×
              </button>
            </div>
          );
        })}
      </div>
      {props.children}
    </div>
  );
}
