// Light and dark themes: the user's choice is kept in localStorage; without one the
// system's preference is followed. The theme is the `data-theme` attribute of <html>.
import { useEffect, useState } from 'preact/hooks';

export type Theme = 'light' | 'dark';
const KEY = 'sandlab.theme';
const listeners = new Set<(t: Theme) => void>();

function system(): Theme {
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function currentTheme(): Theme {
  const t = localStorage.getItem(KEY);
  return t === 'light' || t === 'dark' ? t : system();
}

export function applyTheme(t: Theme = currentTheme()): void {
  document.documentElement.dataset.theme = t;
  listeners.forEach((l) => l(t));
}

export function setTheme(t: Theme): void {
  localStorage.setItem(KEY, t);
  applyTheme(t);
}

/** The current theme, re-rendering when it changes (the terminal and editor restyle). */
export function useTheme(): Theme {
  const [t, setT] = useState(currentTheme());
  useEffect(() => {
    listeners.add(setT);
    return () => void listeners.delete(setT);
  }, []);
  return t;
}

matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
  if (!localStorage.getItem(KEY)) applyTheme();
});
