// The admin page's invites section: make an invite link (a role, an expiry, a number of
// sign-ups; POST /invites), shown once with a copy button since the server keeps only a
// hash of its token; the invites made so far, how far used, and deleting one.
import { useEffect, useState } from 'preact/hooks';

import { api, errorText, type Invite, type Role, type User } from '../../api';
import { CopyLink } from '../../components/CopyLink';
import { ConfirmButton, Empty, ErrorMessage, Spinner } from '../../components/ui';
import { absoluteUrl, dateTime, inviteState } from '../../lib/accounts';

const ROLES: Role[] = ['learner', 'author', 'admin'];
const EXPIRIES: [string, string][] = [
  ['1d', '1 day'],
  ['7d', '7 days'],
  ['30d', '30 days'],
  ['90d', '90 days'],
];
const STATE_TONE = { active: 'ok', expired: 'warn', 'used up': '' } as const;

export function Invites(props: { users: User[] | null }) {
  const [invites, setInvites] = useState<Invite[] | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [role, setRole] = useState<Role>('learner');
  const [expires, setExpires] = useState('7d');
  const [uses, setUses] = useState('1');
  const [busy, setBusy] = useState(false);
  // The invite just made, with its link: shown once, until the next action.
  const [made, setMade] = useState<{ url: string; note: string } | null>(null);

  const load = async () => {
    try {
      const list = await api.invites();
      setInvites(list.slice().sort((a, b) => b.created_at_ms - a.created_at_ms));
      setListError(null);
    } catch (e) {
      setListError(errorText(e));
    }
  };
  useEffect(() => {
    load();
  }, []);

  const create = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setError(null);
    setMade(null);
    const n = Number(uses);
    if (!Number.isInteger(n) || n < 1) return setError('The number of uses is a whole number of at least 1.');
    setBusy(true);
    try {
      const inv = await api.createInvite({ role, expires_in: expires, uses: n });
      const signups = n === 1 ? 'one sign-up' : `${n} sign-ups`;
      setMade({
        url: absoluteUrl(inv.url ?? `/signup?invite=${encodeURIComponent(inv.token ?? '')}`, location.origin),
        note: `Shown only now: it signs up ${signups} as ${inv.role} until ${dateTime(inv.expires_at_ms)}.`,
      });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
    await load();
  };

  const remove = async (inv: Invite) => {
    setError(null);
    setMade(null);
    try {
      await api.deleteInvite(inv.id);
    } catch (e) {
      setError(errorText(e));
    }
    await load();
  };

  const names = new Map((props.users ?? []).map((u) => [u.id, u.username]));
  const now = Date.now();
  return (
    <section aria-labelledby="admin-invites-h">
      <h2 id="admin-invites-h">
        Invites {invites && <span class="badge">{invites.length}</span>}
      </h2>
      {error && <ErrorMessage message={error} />}
      <form class="card admin-add" onSubmit={create} aria-label="Create an invite link">
        <div class="field">
          <label for="inv-role">Role</label>
          <select id="inv-role" data-testid="invite-role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="inv-expires">Expires after</label>
          <select id="inv-expires" data-testid="invite-expires" value={expires} onChange={(e) => setExpires((e.target as HTMLSelectElement).value)}>
            {EXPIRIES.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="inv-uses">Uses</label>
          <input
            id="inv-uses"
            data-testid="invite-uses"
            type="number"
            min={1}
            step={1}
            inputMode="numeric"
            value={uses}
            onInput={(e) => setUses((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field admin-add-go">
          <button type="submit" data-testid="create-invite" disabled={busy}>
            {busy ? 'Creating…' : 'Create invite'}
          </button>
        </div>
      </form>
      {made && <CopyLink label="Invite link" url={made.url} testid="invite-link" note={made.note} />}
      {listError && <ErrorMessage message={listError} retry={load} />}
      {!invites && !listError && <Spinner label="Loading invites" />}
      {invites && invites.length === 0 && <Empty>No invites yet.</Empty>}
      {invites && invites.length > 0 && (
        <div class="table-wrap">
          <table data-testid="admin-invites">
            <caption class="visually-hidden">Invites</caption>
            <thead>
              <tr>
                <th scope="col">Role</th>
                <th scope="col">State</th>
                <th scope="col">Used</th>
                <th scope="col">Expires</th>
                <th scope="col">Created</th>
                <th scope="col">By</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {invites.map((inv) => {
                const state = inviteState(inv, now);
                return (
                  <tr key={inv.id} data-testid="admin-invite-row" data-id={inv.id}>
                    <td>{inv.role}</td>
                    <td>
                      <span class={`badge ${STATE_TONE[state]}`}>{state}</span>
                    </td>
                    <td class="num" data-testid="invite-used">
                      {inv.used} of {inv.uses}
                    </td>
                    <td class="num">{dateTime(inv.expires_at_ms)}</td>
                    <td class="num">{dateTime(inv.created_at_ms)}</td>
                    <td class="nowrap">{inv.created_by ? (names.get(inv.created_by) ?? inv.created_by) : <span class="muted">—</span>}</td>
                    <td class="admin-act">
                      <ConfirmButton class="danger small" testid="delete-invite" confirm="Click again to delete" onConfirm={() => remove(inv)}>
                        Delete
                      </ConfirmButton>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
