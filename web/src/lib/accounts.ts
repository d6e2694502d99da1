// The account pages' small rules, kept apart from the pages so they are unit-tested: the
// client-side check of a new password, the full address of a link the server gives as a
// path, and what an invite's state is.
import type { Invite } from '../api';

/** The server's own minimum (sandlab-store's MIN_PASSWORD_CHARS). */
export const MIN_PASSWORD_CHARS = 8;

/** Why a new password and its repetition cannot be sent, as a sentence; null when they can. */
export function newPasswordProblem(password: string, repeat: string): string | null {
  if (!password) return 'Type the new password.';
  if ([...password].length < MIN_PASSWORD_CHARS) return `The password must have at least ${MIN_PASSWORD_CHARS} characters.`;
  if (password !== repeat) return 'The two passwords differ; type the same one twice.';
  return null;
}

/** `/signup?invite=…` on this origin → `https://labs.example.com/signup?invite=…`. */
export function absoluteUrl(url: string, origin: string): string {
  try {
    return new URL(url, origin).href;
  } catch {
    return origin.replace(/\/$/, '') + url;
  }
}

export type InviteState = 'active' | 'expired' | 'used up';

export function inviteState(inv: Pick<Invite, 'expires_at_ms' | 'uses' | 'used'>, now: number): InviteState {
  if (inv.used >= inv.uses) return 'used up';
  return inv.expires_at_ms <= now ? 'expired' : 'active';
}

/** Unix milliseconds as a short local date and time: "12 Mar 2026, 14:05". */
export function dateTime(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}
