// The lab's text: the server's sanitised HTML, enhanced in place with DOM APIs only:
// a Run and a Copy button on every `{exec}` block (`pre[data-exec]` that shows the lab's
// command for that block; see verifiedExecBlock), the live state
// of every inline `::task` marker (`div.sandlab-task[data-task]`), and port links
// (`a.sandlab-port` with `data-node`, `data-port`, `data-path`, or `data-select` for the
// list of detected ports) that open the port in a tab instead of following `href`.
import { render } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

import type { ExecBlock, TaskState } from '../api';
import { taskName } from '../format';
import { validPort } from '../lib/tabs';
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
  /** Opens a port link's port in a tab; null while the machines are not ready. */
  onPort: ((link: PortLink) => void) | null;
}

/** A port link of the text: a port of a node (the first node when it names none), or
 * "let the learner choose one of the detected ports". */
export type PortLink = { select: true } | { select: false; node: string | null; port: number; path: string | null };

function portLink(a: HTMLElement): PortLink | null {
  if (a.hasAttribute('data-select')) return { select: true };
  const port = Number(a.dataset.port);
  if (!validPort(port)) return null;
  return { select: false, node: a.dataset.node || null, port, path: a.dataset.path || null };
}

function portTitle(link: PortLink, multiNode: boolean): string {
  if (link.select) return 'Choose one of the ports listening in your machines';
  const of = link.node && multiNode ? ` of ${link.node}` : '';
  return `Open port ${link.port}${of}${link.path ? ` at ${link.path}` : ''} in a tab`;
}

export function LabText(props: LabTextProps) {
  const ref = useRef<HTMLDivElement>(null);
  const onRun = useRef(props.onRun);
  onRun.current = props.onRun;
  const onPort = useRef(props.onPort);
  onPort.current = props.onPort;

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

  // Port links say what they open, and are off while the machines are not ready.
  useEffect(() => {
    ref.current!.querySelectorAll<HTMLAnchorElement>('a.sandlab-port').forEach((a) => {
      const link = portLink(a);
      // The author's own title, if the link has one, is kept.
      a.dataset.ownTitle ??= a.title;
      if (!props.onPort || !link) {
        a.setAttribute('aria-disabled', 'true');
        a.title = link ? 'The machines are not ready yet' : 'This link names no valid port';
        return;
      }
      a.removeAttribute('aria-disabled');
      a.title = a.dataset.ownTitle || portTitle(link, props.multiNode);
    });
  }, [props.html, !!props.onPort, props.multiNode]);

  const onClick = (e: MouseEvent) => {
    const a = (e.target as Element | null)?.closest?.<HTMLElement>('a.sandlab-port');
    if (!a || !ref.current!.contains(a)) return;
    e.preventDefault(); // its href is "#"
    const link = portLink(a);
    if (link) onPort.current?.(link);
  };

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

  return <div ref={ref} class="lab-text" data-testid="lab-text" onClick={onClick} dangerouslySetInnerHTML={{ __html: props.html }} />;
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
