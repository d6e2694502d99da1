// A done/total bar with its numbers as text (the bar is decoration for the text).
import './ProgressBar.css';

export function ProgressBar(props: { done: number; total: number; label?: string }) {
  const { done, total } = props;
  const pct = total > 0 ? Math.min(100, Math.round((done / total) * 100)) : 0;
  const complete = total > 0 && done >= total;
  return (
    <div class={`pbar${complete ? ' pbar-done' : ''}`}>
      <div
        class="pbar-track"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={Math.min(done, total)}
        aria-label={props.label ?? 'Tasks done'}
      >
        <div class="pbar-fill" style={{ width: `${pct}%` }} />
      </div>
      <span class="pbar-text">
        {Math.min(done, total)}/{total} done
      </span>
    </div>
  );
}
