// The time left in a session, counting down each second; warning-coloured in the last
// five minutes. `onZero` fires once when it reaches 0 (the page re-fetches the session).
import { useEffect, useRef, useState } from 'preact/hooks';

import { clock } from '../format';

const WARN_MS = 5 * 60 * 1000;

export function SessionTimer(props: { deadline: number; onZero?: () => void }) {
  const [now, setNow] = useState(Date.now());
  const fired = useRef(false);
  useEffect(() => {
    fired.current = false;
    setNow(Date.now());
    const t = window.setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [props.deadline]);
  const left = Math.max(0, props.deadline - now);
  useEffect(() => {
    if (left === 0 && !fired.current) {
      fired.current = true;
      props.onZero?.();
    }
  }, [left === 0]);
  const warn = left < WARN_MS;
  const mins = Math.ceil(left / 60000);
  return (
    <span
      class={`session-timer${warn ? ' warn' : ''}${left === 0 ? ' over' : ''}`}
      data-testid="session-timer"
      data-left-ms={left}
      role="timer"
      aria-label={left === 0 ? 'No time left' : `${mins} ${mins === 1 ? 'minute' : 'minutes'} left`}
      title="Time left before the lab's machines are removed"
    >
      <svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true">
        <circle cx="8" cy="9" r="6" fill="none" stroke="currentColor" stroke-width="1.6" />
        <path d="M8 5.5V9l2.2 1.4M6 1.5h4" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" />
      </svg>
      <span class="session-timer-value">{clock(left)}</span>
    </span>
  );
}
