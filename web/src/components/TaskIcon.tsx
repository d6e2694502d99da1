// A task's state as a fixed-size icon plus words for screen readers, so a list of
// tasks never shifts when one changes state.
import type { TaskState } from '../api';
import './TaskIcon.css';

export const TASK_STATE_TEXT: Record<TaskState, string> = {
  pending: 'Not done yet',
  blocked: 'Waiting for an earlier task',
  running: 'Running',
  done: 'Done',
  failed: 'Failed',
};

export function TaskIcon(props: { state: TaskState }) {
  const s = props.state;
  return (
    <span class={`task-icon task-icon-${s}`} data-state={s}>
      <svg viewBox="0 0 20 20" width="20" height="20" aria-hidden="true" focusable="false">
        {s === 'done' && (
          <>
            <circle cx="10" cy="10" r="9" class="ti-fill" />
            <path d="M5.5 10.5l3 3 6-7" class="ti-mark" />
          </>
        )}
        {s === 'failed' && (
          <>
            <circle cx="10" cy="10" r="9" class="ti-fill" />
            <path d="M6.5 6.5l7 7M13.5 6.5l-7 7" class="ti-mark" />
          </>
        )}
        {s === 'pending' && <circle cx="10" cy="10" r="8" class="ti-ring" />}
        {s === 'blocked' && (
          <>
            <circle cx="10" cy="10" r="8" class="ti-ring ti-dashed" />
            <rect x="7" y="9.5" width="6" height="4.5" rx="1" class="ti-lock" />
            <path d="M8.2 9.5V8a1.8 1.8 0 013.6 0v1.5" class="ti-shackle" />
          </>
        )}
        {s === 'running' && (
          <>
            <circle cx="10" cy="10" r="8" class="ti-ring ti-track" />
            <path d="M10 2a8 8 0 018 8" class="ti-spin" />
          </>
        )}
      </svg>
      <span class="sr-only">{TASK_STATE_TEXT[s]}</span>
    </span>
  );
}
