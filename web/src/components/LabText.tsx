// The lab's text: the server's sanitised HTML, enhanced in place with DOM APIs only:
// a Run and a Copy button on every `{exec}` block (`pre[data-exec]` that shows the lab's
// command for that block; see verifiedExecBlock) and the live state
// of every inline `::task` marker (`div.sandlab-task[data-task]`).
import { render } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

import type { ExecBlock, TaskState } from '../api';
import { taskName } from '../format';
import { copyText } from './Terminal';
import { TASK_STATE_TEXT, TaskIcon } from './TaskIcon';
import './LabText.css';

export interface LabTextProps {
  html: string;
  execBlocks: ExecBlock[];
  states: Record<string, TaskState>;
  /** Types the command into `node`'s terminal (switching to it); null while the
   * terminals are not open. */
  onRun: ((command: string, node: string) => void) | null;
  /** Whether the lab has several nodes (then each button names its node). */
  multiNode: boolean;
}

export function LabText(props: LabTextProps) {
  const ref = useRef<HTMLDivElement>(null);
  const onRun = useRef(props.onRun);
  onRun.current = props.onRun;

  // Buttons on the exec blocks, once per text. Run types the lab's own command, never
  // the block's text, and only where the block shows exactly that command.
  useEffect(() => {
    const root = ref.current!;
    const added: HTMLElement[] = [];
    root.querySelectorAll<HTMLElement>('pre[data-exec]').forEach((pre) => {
      const block = verifiedExecBlock(pre, props.execBlocks);
      if (!block) return;
      const command = block.command.replace(/\n+$/, '');
      const bar = document.createElement('div');
      bar.className = 'exec-bar';
      const run = document.createElement('button');
      run.type = 'button';
      run.className = 'small exec-run';
      run.dataset.testid = 'run-button';
      run.setAttribute('data-testid', 'run-button');
      run.dataset.exec = String(block.id);
      run.dataset.node = block.node;
      run.textContent = props.multiNode ? `▶ Run on ${block.node}` : '▶ Run';
      run.addEventListener('click', () => onRun.current?.(command, block.node));
      const copy = document.createElement('button');
      copy.type = 'button';
      copy.className = 'small secondary exec-copy';
      copy.textContent = 'Copy';
      copy.setAttribute('aria-label', 'Copy this command');
      copy.addEventListener('click', async () => {
        const ok = await copyText(command);
        copy.textContent = ok ? 'Copied' : 'Copy failed';
        window.setTimeout(() => (copy.textContent = 'Copy'), 1500);
      });
      bar.append(copy, run);
      pre.classList.add('exec-block');
      pre.prepend(bar);
      added.push(bar);
    });
    return () => {
      added.forEach((b) => b.remove());
    };
  }, [props.html, props.execBlocks, props.multiNode]);

  // The Run buttons name the terminal they type into, and are off while there is none.
  useEffect(() => {
    ref.current!.querySelectorAll<HTMLButtonElement>('button.exec-run').forEach((b) => {
      const node = b.dataset.node ?? '';
      b.disabled = !props.onRun;
      b.title = props.onRun ? `Type this into the ${node} terminal and press Enter` : 'The terminal is not open yet';
      b.setAttribute('aria-label', `Run this in the ${node} terminal`);
    });
  }, [props.html, props.execBlocks, !!props.onRun]);

  // The inline task markers show the live state.
  useEffect(() => {
    const els = Array.from(ref.current!.querySelectorAll<HTMLElement>('.sandlab-task[data-task]'));
    for (const el of els) {
      const id = el.dataset.task!;
      const state = props.states[id] ?? 'pending';
      el.dataset.state = state;
      render(<InlineTask id={id} state={state} />, el);
    }
  }, [props.html, props.states]);
  useEffect(() => {
    const root = ref.current!;
    return () => root.querySelectorAll<HTMLElement>('.sandlab-task[data-task]').forEach((el) => render(null, el));
  }, [props.html]);

  return <div ref={ref} class="lab-text" data-testid="lab-text" dangerouslySetInnerHTML={{ __html: props.html }} />;
}

/** The exec block `pre` stands for: its `data-exec` must be the id of one of the lab's
 * exec blocks and its visible text that block's command; otherwise null (no buttons). */
function verifiedExecBlock(pre: HTMLElement, blocks: ExecBlock[]): ExecBlock | null {
  const raw = pre.getAttribute('data-exec') ?? '';
  if (!/^\d+$/.test(raw)) return null;
  const block = blocks.find((b) => b.id === Number(raw));
  if (!block) return null;
  const want = block.command.trim();
  // Both the text and what is rendered of it: hidden text must not sneak in.
  const shown = [pre.textContent ?? '', pre.innerText ?? ''];
  return shown.every((t) => t.trim() === want) ? block : null;
}

function InlineTask(props: { id: string; state: TaskState }) {
  return (
    <div class={`inline-task inline-task-${props.state}`}>
      <TaskIcon state={props.state} />
      <span class="inline-task-label">
        Task: <strong>{taskName(props.id)}</strong>
      </span>
      <span class="inline-task-state" aria-hidden="true">
        {TASK_STATE_TEXT[props.state]}
      </span>
    </div>
  );
}
