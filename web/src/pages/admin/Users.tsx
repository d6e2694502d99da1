// The admin page's users section: add an account, change a role, disable or enable, and
// make a password reset link (POST /users/{id}/password-reset; shown once, to hand on: the
// user sets a new password with it on /reset).
import { useState } from 'preact/hooks';

import { api, errorText, type Role, type User } from '../../api';
import { CopyLink } from '../../components/CopyLink';
import { Empty, ErrorMessage, Spinner } from '../../components/ui';
import { absoluteUrl, dateTime } from '../../lib/accounts';

const ROLES: Role[] = ['learner', 'author', 'admin'];

export function Users(props: { me: User; users: User[] | null; error?: string; reload: () => Promise<void> }) {
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  // Bumped after a refused change so the role selects show the stored role again.
  const [version, setVersion] = useState(0);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('learner');
  const [adding, setAdding] = useState(false);
  // The reset link just made for a user: shown once, until the next action.
  const [reset, setReset] = useState<{ username: string; url: string; expires: string } | null>(null);

  const resetPassword = async (u: User) => {
    setError(null);
    setDone(null);
    setReset(null);
    setBusy(u.id);
    try {
      const r = await api.passwordReset(u.id);
      setReset({ username: u.username, url: absoluteUrl(r.url, location.origin), expires: dateTime(r.expires_at_ms) });
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(null);
    }
  };

  const change = async (u: User, patch: { role?: Role; disabled?: boolean }, what: string) => {
    setError(null);
    setDone(null);
    setReset(null);
    setBusy(u.id);
    try {
      await api.updateUser(u.id, patch);
      setDone(`${u.username} ${what}.`);
    } catch (e) {
      setError(errorText(e));
      setVersion((v) => v + 1);
    } finally {
      setBusy(null);
    }
    await props.reload();
  };

  const add = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setDone(null);
    if (!username.trim()) return setError('Type a username for the new account.');
    if (password.length < 8) return setError('The password must have at least 8 characters.');
    setAdding(true);
    try {
      const u = await api.createUser(username.trim(), password, role);
      setDone(`Added ${u.username} as ${u.role}.`);
      setUsername('');
      setPassword('');
      setRole('learner');
    } catch (err) {
      setError(errorText(err));
    } finally {
      setAdding(false);
    }
    await props.reload();
  };

  return (
    <section aria-labelledby="admin-users-h">
      <h2 id="admin-users-h">
        Users {props.users && <span class="badge">{props.users.length}</span>}
      </h2>
      {props.error && <ErrorMessage message={props.error} retry={props.reload} />}
      {error && <ErrorMessage message={error} />}
      {done && (
        <p class="admin-done" role="status">
          {done}
        </p>
      )}
      {reset && (
        <CopyLink
          label={`Password reset link for ${reset.username}`}
          url={reset.url}
          testid="reset-link"
          note={`Shown only now: give it to ${reset.username}, who sets a new password with it once, until ${reset.expires}.`}
        />
      )}
      <form class="card admin-add" onSubmit={add} aria-label="Add a user">
        <div class="field">
          <label for="nu-name">Username</label>
          <input id="nu-name" data-testid="new-user-name" value={username} autocomplete="off" spellcheck={false} onInput={(e) => setUsername((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="nu-pass">Password</label>
          <input
            id="nu-pass"
            data-testid="new-user-password"
            type="password"
            value={password}
            autocomplete="new-password"
            onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field">
          <label for="nu-role">Role</label>
          <select id="nu-role" data-testid="new-user-role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <div class="field admin-add-go">
          <button type="submit" data-testid="add-user" disabled={adding}>
            {adding ? 'Adding…' : 'Add user'}
          </button>
        </div>
      </form>
      {!props.users && !props.error && <Spinner label="Loading users" />}
      {props.users && props.users.length === 0 && <Empty>No users.</Empty>}
      {props.users && props.users.length > 0 && (
        <div class="table-wrap">
          <table data-testid="admin-users">
            <caption class="visually-hidden">Users</caption>
            <thead>
              <tr>
                <th scope="col">Username</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {props.users.map((u) => (
                <tr key={`${u.id}-${version}`} data-testid="admin-user-row" data-id={u.id} data-username={u.username}>
                  <td>
                    {u.username}
                    {u.id === props.me.id && <span class="muted"> (you)</span>}
                  </td>
                  <td>
                    <select
                      aria-label={`Role of ${u.username}`}
                      data-testid="user-role"
                      value={u.role}
                      disabled={busy === u.id}
                      onChange={(e) => {
                        const r = (e.target as HTMLSelectElement).value as Role;
                        if (r !== u.role) change(u, { role: r }, `is now ${r === 'admin' ? 'an' : 'a'} ${r}`);
                      }}
                    >
                      {ROLES.map((r) => (
                        <option key={r} value={r}>
                          {r}
                        </option>
                      ))}
                    </select>
                  </td>
                  <td>{u.disabled ? <span class="badge bad">disabled</span> : <span class="badge ok">active</span>}</td>
                  <td class="num">{new Date(u.created_at_ms).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' })}</td>
                  <td class="admin-act">
                    <button
                      type="button"
                      class="small secondary"
                      data-testid="reset-password"
                      disabled={busy === u.id}
                      aria-label={`Reset password for ${u.username}`}
                      onClick={() => resetPassword(u)}
                    >
                      Reset password
                    </button>{' '}
                    <button
                      type="button"
                      class={`small ${u.disabled ? 'secondary' : 'danger'}`}
                      data-testid="toggle-user"
                      disabled={busy === u.id}
                      onClick={() => change(u, { disabled: !u.disabled }, u.disabled ? 'can sign in again' : 'is disabled')}
                    >
                      {u.disabled ? 'Enable' : 'Disable'}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
