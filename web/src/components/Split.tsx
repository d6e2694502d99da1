// Two panes side by side with a draggable (and keyboard-movable) divider, remembered in
// localStorage; the CSS stacks them on narrow screens.
// Styles: pages/SessionPage.css, beside the page layout and its narrow-screen rules.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

const SPLIT_KEY = 'sandlab.split';

/** Two panes with a draggable (and keyboard-movable) divider; stacked on narrow screens. */
export function Split(props: { children: [ComponentChildren, ComponentChildren] }) {
  const [pct, setPct] = useState(() => {
    const v = Number(localStorage.getItem(SPLIT_KEY));
    return v >= 25 && v <= 75 ? v : 46;
  });
  const ref = useRef<HTMLDivElement>(null);
  // Ends a drag in progress (also when the page goes away mid-drag).
  const endDrag = useRef<(() => void) | null>(null);
  useEffect(() => () => endDrag.current?.(), []);
  const save = (v: number) => {
    const c = Math.min(75, Math.max(25, v));
    setPct(c);
    localStorage.setItem(SPLIT_KEY, String(Math.round(c)));
  };
  const onPointerDown = (e: PointerEvent) => {
    e.preventDefault();
    const box = ref.current!.getBoundingClientRect();
    const move = (ev: PointerEvent) => save(((ev.clientX - box.left) / box.width) * 100);
    const up = () => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
      document.body.classList.remove('resizing');
      endDrag.current = null;
    };
    endDrag.current?.();
    endDrag.current = up;
    document.body.classList.add('resizing');
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
  };
  return (
    <div class="session-split" ref={ref} style={{ '--split': `${pct}%` }}>
      {props.children[0]}
      <div
        class="split-handle"
        role="separator"
        aria-orientation="vertical"
        aria-label="Resize the instructions and terminal panes"
        aria-valuemin={25}
        aria-valuemax={75}
        aria-valuenow={Math.round(pct)}
        tabIndex={0}
        onPointerDown={onPointerDown}
        onKeyDown={(e) => {
          if (e.key === 'ArrowLeft') save(pct - 3);
          else if (e.key === 'ArrowRight') save(pct + 3);
          else return;
          e.preventDefault();
        }}
      />
      {props.children[1]}
    </div>
  );
}
