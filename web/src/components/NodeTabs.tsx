// The machine tabs above a lab's terminals: a WAI-ARIA tab list (arrow keys, Home, End).
// Styles: pages/SessionPage.css.

export function NodeTabs(props: { nodes: string[]; active: string; onSelect: (n: string) => void }) {
  const onKey = (e: KeyboardEvent) => {
    const i = props.nodes.indexOf(props.active);
    let j = -1;
    if (e.key === 'ArrowRight') j = (i + 1) % props.nodes.length;
    else if (e.key === 'ArrowLeft') j = (i - 1 + props.nodes.length) % props.nodes.length;
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = props.nodes.length - 1;
    if (j < 0) return;
    e.preventDefault();
    props.onSelect(props.nodes[j]);
    const list = (e.currentTarget as HTMLElement).querySelectorAll<HTMLButtonElement>('[role=tab]');
    list[j]?.focus();
  };
  return (
    <div class="node-tabs" role="tablist" aria-label="Machines" onKeyDown={onKey}>
      {props.nodes.map((n) => (
        <button
          type="button"
          role="tab"
          class={`node-tab${n === props.active ? ' active' : ''}`}
          data-testid="node-tab"
          data-node={n}
          aria-selected={n === props.active}
          aria-controls="term-panel"
          tabIndex={n === props.active ? 0 : -1}
          onClick={() => props.onSelect(n)}
        >
          <span class="node-dot" aria-hidden="true" />
          {n}
        </button>
      ))}
    </div>
  );
}
