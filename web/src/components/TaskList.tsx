// The checklist of a session's checked tasks: live state icons, hints on request, and a
// polite announcement when a task turns done.
import type { TaskState, TaskView } from '../api';
import { taskName } from '../format';
import { TASK_STATE_TEXT, TaskIcon } from './TaskIcon';
import './TaskList.css';

export interface HintState {
  html?: string;
  busy?: boolean;
  error?: string;
}

export function TaskList(props: {
  tasks: TaskView[];
  states: Record<string, TaskState>;
  hints: Record<string, HintState>;
  onHint: (task: string) => void;
  /** Whether hints can be asked for (the session is live). */
  hintsEnabled: boolean;
}) {
  const done = props.tasks.filter((t) => props.states[t.id] === 'done').length;
  return (
    <section class="task-panel" aria-labelledby="task-panel-title">
      <div class="task-panel-head">
        <h2 id="task-panel-title">Tasks</h2>
        <span class="muted task-count">
          {done} of {props.tasks.length} done
        </span>
      </div>
      <ol class="task-list" data-testid="task-list">
        {props.tasks.map((t) => {
          const state = props.states[t.id] ?? 'pending';
          const hint = props.hints[t.id];
          const needs = t.needs.filter((n) => props.states[n] !== 'done');
          const stateText =
            state === 'blocked' && needs.length > 0 ? `After ${needs.map(taskName).join(', ')}` : TASK_STATE_TEXT[state];
          const showHintButton = t.has_hint && !hint?.html && state !== 'done';
          return (
            <li class={`task-item task-${state}`} data-testid="task-item" data-task={t.id} data-state={state}>
              <div class="task-row">
                <TaskIcon state={state} />
                <span class="task-name">{taskName(t.id)}</span>
                <span class="task-state" aria-hidden="true" title={stateText}>
                  {stateText}
                </span>
                {/* The slot stays when the button goes (task done, hint shown): no row moves. */}
                <span class="task-actions">
                  {t.has_hint && (
                    <button
                      type="button"
                      class={`ghost small hint-btn${showHintButton ? '' : ' hint-btn-gone'}`}
                      data-testid={showHintButton ? 'hint-button' : undefined}
                      data-task={t.id}
                      disabled={!showHintButton || !props.hintsEnabled || hint?.busy}
                      aria-hidden={showHintButton ? undefined : 'true'}
                      tabIndex={showHintButton ? undefined : -1}
                      aria-label={`Show a hint for ${taskName(t.id)}`}
                      onClick={() => props.onHint(t.id)}
                    >
                      {hint?.busy ? 'Loading…' : 'Hint'}
                    </button>
                  )}
                </span>
              </div>
              {hint?.html && (
                <div class="hint" data-testid="hint" data-task={t.id}>
                  <span class="hint-label">Hint</span>
                  <div class="hint-body" dangerouslySetInnerHTML={{ __html: hint.html }} />
                </div>
              )}
              {hint?.error && (
                <div class="error hint-error" role="alert" data-testid="error">
                  {hint.error}
                </div>
              )}
            </li>
          );
        })}
      </ol>
    </section>
  );
}
