// Copy, paste and the terminal's own keys.
//
// Keyboard: Ctrl+Shift+C / Ctrl+Insert copy, Ctrl+C copies when text is selected (else
// sends ^C), Ctrl+V / Ctrl+Shift+V / Shift+Insert paste, Esc then Tab moves the focus out
// of the terminal (Tab alone goes to the shell for completion).
import type { Terminal as XTerm } from '@xterm/xterm';

/** Copies `text` to the clipboard; falls back to execCommand where the Clipboard API is
 * missing (plain-http pages that are not localhost). */
export async function copyText(text: string): Promise<boolean> {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      /* not allowed (e.g. the document lost focus): try the old way */
    }
  }
  return legacyCopy(text);
}

function legacyCopy(text: string): boolean {
  const prev = document.activeElement as HTMLElement | null;
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.setAttribute('aria-hidden', 'true');
  ta.style.cssText = 'position:fixed;top:0;left:-9999px;opacity:0;';
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  prev?.focus?.();
  return ok;
}

/** Copies the terminal's selection, telling the learner how it went. */
export function copySelection(term: XTerm, flash: (text: string) => void): void {
  const text = term.getSelection();
  if (!text) return;
  copyText(text).then((ok) => flash(ok ? 'Copied' : 'Copy failed; use the browser menu (Shift+right-click).'));
}

/** Pastes the clipboard into the terminal (as a paste: bracketed when the shell asks). */
export function pasteClipboard(term: XTerm, flash: (text: string) => void): void {
  if (!navigator.clipboard?.readText) {
    flash('Press Ctrl+Shift+V to paste here.');
    return;
  }
  navigator.clipboard
    .readText()
    .then((text) => {
      if (text) term.paste(text);
      term.focus();
    })
    .catch(() => flash('The browser did not allow reading the clipboard; press Ctrl+Shift+V.'));
}

/** Moves the focus to the element Tab (or Shift+Tab) would reach from outside `from`. */
function focusOutside(from: HTMLElement, backwards: boolean): void {
  const all = Array.from(
    document.querySelectorAll<HTMLElement>(
      'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])',
    ),
  ).filter((el) => !from.contains(el) && el.offsetParent !== null);
  const after = all.filter((el) => from.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING);
  const before = all.filter((el) => from.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_PRECEDING);
  const target = backwards ? before[before.length - 1] : after[0];
  (target ?? (backwards ? all[all.length - 1] : all[0]))?.focus();
}

/** Installs the copy/paste/focus keys on `term` (whose container is `box`); returns the
 * function that removes them. */
export function installKeys(term: XTerm, box: HTMLElement, flash: (text: string) => void): () => void {
  let escArmed = false;
  let pasteTimer = 0;

  term.attachCustomKeyEventHandler((e) => {
    if (e.type !== 'keydown') return true;
    const key = e.key.toLowerCase();
    if (escArmed && e.key === 'Tab' && !e.ctrlKey && !e.altKey && !e.metaKey) {
      escArmed = false;
      e.preventDefault();
      focusOutside(box, e.shiftKey);
      return false;
    }
    escArmed = e.key === 'Escape';
    const ctrl = e.ctrlKey && !e.altKey && !e.metaKey;
    // Copy: Ctrl+Shift+C, Ctrl+Insert, Ctrl+C with a selection (and Cmd+C on a Mac).
    if (
      (ctrl && e.shiftKey && key === 'c') ||
      (ctrl && !e.shiftKey && e.key === 'Insert') ||
      (((ctrl && !e.shiftKey) || (e.metaKey && !e.ctrlKey)) && key === 'c' && term.hasSelection())
    ) {
      e.preventDefault();
      copySelection(term, flash);
      if (!e.shiftKey && e.key !== 'Insert') term.clearSelection();
      return false;
    }
    if (ctrl && e.shiftKey && key === 'c') {
      e.preventDefault(); // nothing selected: at least keep the browser's inspector shut
      return false;
    }
    // Paste: let the browser deliver its own paste event (xterm turns it into
    // term.paste, with bracketed paste); if none arrives, read the clipboard.
    if (
      (ctrl && key === 'v') ||
      (e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && e.key === 'Insert') ||
      (e.metaKey && !e.ctrlKey && key === 'v')
    ) {
      clearTimeout(pasteTimer);
      pasteTimer = window.setTimeout(() => {
        pasteTimer = 0;
        if (typeof navigator.clipboard?.readText === 'function') pasteClipboard(term, flash);
      }, 150);
      return false;
    }
    return true;
  });

  const onNativePaste = () => {
    clearTimeout(pasteTimer);
    pasteTimer = 0;
  };
  box.addEventListener('paste', onNativePaste, true);
  return () => {
    clearTimeout(pasteTimer);
    box.removeEventListener('paste', onNativePaste, true);
  };
}
