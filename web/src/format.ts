// Formatting helpers shared by the pages: durations, ages, sizes, task names.

/** 90_000 → "1:30", 3_723_000 → "1:02:03". */
export function clock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** 1_800_000 → "30 min", 5_400_000 → "1 h 30 min". */
export function duration(ms: number): string {
  const min = Math.round(ms / 60000);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
}

/** How long ago `ms` (Unix milliseconds) was, e.g. "3 min ago". */
export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** Task titles the author gave, by task id, of the labs loaded so far. */
const titles = new Map<string, string>();

/** Remembers the titles of a lab's tasks, for [`taskName`]. */
export function rememberTaskTitles(tasks: { id: string; title?: string | null }[]): void {
  for (const t of tasks) {
    if (t.title) titles.set(t.id, t.title);
    else titles.delete(t.id);
  }
}

/** The task's title, or its id as words: "write_page" → "Write page". */
export function taskName(id: string): string {
  const given = titles.get(id);
  if (given) return given;
  const s = id.replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}
