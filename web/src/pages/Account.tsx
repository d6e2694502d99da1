// The signed-in user's own account (/account, the name in the top bar): who they are and
// a form to change their password (POST /me/password, with the current one).
import { useEffect, useRef, useState } from 'preact/hooks';

import { api, errorText, type User } from '../api';
import { ErrorMessage } from '../components/ui';
import { newPasswordProblem } from '../lib/accounts';
import './Account.css';

export function Account(props: { user: User }) {
  useEffect(() => {
    document.title = 'Account · Sandlab';
  }, []);
  const u = props.user;
  return (
    <main class="page narrow account-page">
      <h1>Account</h1>
      <dl class="card account-facts">
        <dt>Username</dt>
        <dd data-testid="account-username">{u.username}</dd>
        <dt>Role</dt>
        <dd>{u.role}</dd>
        <dt>Member since</dt>
        <dd>{new Date(u.created_at_ms).toLocaleDateString(undefined, { year: 'numeric', month: 'long', day: 'numeric' })}</dd>
      </dl>
      <ChangePassword username={u.username} />
    </main>
  );
}

function ChangePassword(props: { username: string }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [repeat, setRepeat] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [done, setDone] = useState(false);
  const currentRef = useRef<HTMLInputElement>(null);
  const nextRef = useRef<HTMLInputElement>(null);
  const repeatRef = useRef<HTMLInputElement>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setDone(false);
    if (!current) {
      setError('Type your current password.');
      currentRef.current?.focus();
      return;
    }
    const problem = newPasswordProblem(next, repeat);
    if (problem) {
      setError(problem);
      (newPasswordProblem(next, next) ? nextRef : repeatRef).current?.focus();
      return;
    }
    setBusy(true);
    setError('');
    try {
      await api.changePassword(current, next);
      setDone(true);
      setCurrent('');
      setNext('');
      setRepeat('');
    } catch (err) {
      setError(errorText(err));
      setCurrent('');
      currentRef.current?.focus();
    } finally {
      setBusy(false);
    }
  };

  const onInput = (set: (v: string) => void) => (e: Event) => {
    set((e.target as HTMLInputElement).value);
    setDone(false);
  };

  return (
    <section aria-labelledby="account-password-h">
      <h2 id="account-password-h">Change password</h2>
      <form class="card account-form" onSubmit={submit} noValidate aria-labelledby="account-password-h">
        {/* For password managers: which account the new password belongs to. */}
        <input type="text" name="username" autocomplete="username" value={props.username} readOnly hidden />
        <label for="pw-current">Current password</label>
        <input
          id="pw-current"
          ref={currentRef}
          data-testid="password-current"
          type="password"
          autocomplete="current-password"
          value={current}
          onInput={onInput(setCurrent)}
        />
        <label for="pw-new">New password</label>
        <input
          id="pw-new"
          ref={nextRef}
          data-testid="password-new"
          type="password"
          autocomplete="new-password"
          aria-describedby="pw-new-hint"
          value={next}
          onInput={onInput(setNext)}
        />
        <span id="pw-new-hint" class="muted account-hint">
          At least 8 characters.
        </span>
        <label for="pw-repeat">Repeat the new password</label>
        <input
          id="pw-repeat"
          ref={repeatRef}
          data-testid="password-repeat"
          type="password"
          autocomplete="new-password"
          value={repeat}
          onInput={onInput(setRepeat)}
        />
        {error && <ErrorMessage message={error} />}
        <p class="account-done" role="status" data-testid="password-changed">
          {done ? 'Your password is changed; use the new one the next time you sign in.' : ''}
        </p>
        <div>
          <button type="submit" data-testid="password-submit" disabled={busy}>
            {busy ? 'Changing…' : 'Change password'}
          </button>
        </div>
      </form>
    </section>
  );
}
