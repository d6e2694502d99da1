// Starting a lab session from the UI: the one way the pages do it.
import { api, ApiError } from '../api';
import { navigate } from '../router';

/** Starts a session of the lab `slug` and opens its page. With `replacing`, that session
 * is ended first (one that is already gone is fine); with `fresh`, every task is checked
 * again instead of starting done where the user did it before. Throws the API's error. */
export async function startLabSession(slug: string, replacing?: string, fresh = false): Promise<void> {
  if (replacing) {
    await api.endSession(replacing).catch((e) => {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    });
  }
  const s = await api.startSession(slug, fresh);
  navigate(`/sessions/${encodeURIComponent(s.id)}`);
}
