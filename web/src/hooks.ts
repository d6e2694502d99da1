// Small hooks shared by the pages: a ticking clock and polling while the tab is visible.
import { useEffect, useRef, useState } from 'preact/hooks';

/** Re-renders every `ms` while mounted and returns the current time. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/**
 * Runs `f` now and every `ms` while the tab is visible (and at once when it shows again);
 * starts over when `ms` or one of `deps` changes. Returns whether polling is paused (the
 * tab is hidden).
 */
export function useVisiblePoll(f: () => void, ms: number, deps: unknown[] = []): boolean {
  const fn = useRef(f);
  fn.current = f;
  const [paused, setPaused] = useState(document.hidden);
  useEffect(() => {
    let t: ReturnType<typeof setInterval> | undefined;
    const stop = () => {
      if (t !== undefined) clearInterval(t);
      t = undefined;
    };
    const start = () => {
      stop();
      t = setInterval(() => fn.current(), ms);
    };
    const vis = () => {
      setPaused(document.hidden);
      if (document.hidden) stop();
      else {
        fn.current();
        start();
      }
    };
    fn.current();
    if (!document.hidden) start();
    document.addEventListener('visibilitychange', vis);
    return () => {
      stop();
      document.removeEventListener('visibilitychange', vis);
    };
  }, [ms, ...deps]);
  return paused;
}
