// The password reset page (/reset?token=…), opened from the one-time link an admin made
// (POST /users/{id}/password-reset): a new password twice, sent with the link's token to
// POST /auth/reset (no login needed), then the way to sign in with it.
import { useEffect, useRef, useState } from 'preact/hooks';

import { api, errorText } from '../api';
import { ErrorMessage } from '../components/ui';
import { newPasswordProblem } from '../lib/accounts';
import { queryParam } from '../router';
import './Login.css';

export function Reset(props: { path: string }) {
  const token = queryParam(props.path, 'token') ?? '';
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [done, setDone] = useState(false);
  const passRef = useRef<HTMLInputElement>(null);
  const repeatRef = useRef<HTMLInputElement>(null);
  const doneRef = useRef<HTMLParagraphElement>(null);

  useEffect(() => {
    document.title = 'Set a new password · Sandlab';
    passRef.current?.focus();
  }, []);
  useEffect(() => {
    if (done) doneRef.current?.focus();
  }, [done]);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    const problem = newPasswordProblem(password, repeat);
    if (problem) {
      setError(problem);
      (newPasswordProblem(password, password) ? passRef : repeatRef).current?.focus();
      return;
    }
    setBusy(true);
    setError('');
    try {
      await api.completeReset(token, password);
      setDone(true);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  let body;
  if (!token)
    body = (
      <div class="login-note">
        <ErrorMessage message="This link has no reset token; ask an administrator for a new link." />
        <a href="/login">Sign in</a>
      </div>
    );
  else if (done)
    body = (
      <p class="login-done" role="status" tabIndex={-1} ref={doneRef} data-testid="reset-done">
        Your new password is set. <a href="/login">Sign in with it</a>
      </p>
    );
  else
    body = (
      <form onSubmit={submit} noValidate aria-labelledby="reset-title" class="login-form">
        <label for="reset-password">New password</label>
        <input
          id="reset-password"
          ref={passRef}
          data-testid="reset-new"
          type="password"
          autocomplete="new-password"
          aria-describedby="reset-password-hint"
          value={password}
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
        />
        <span id="reset-password-hint" class="muted login-hint">
          At least 8 characters.
        </span>
        <label for="reset-repeat">Repeat the new password</label>
        <input
          id="reset-repeat"
          ref={repeatRef}
          data-testid="reset-repeat"
          type="password"
          autocomplete="new-password"
          value={repeat}
          onInput={(e) => setRepeat((e.target as HTMLInputElement).value)}
        />
        <div class="login-error">{error && <ErrorMessage message={error} />}</div>
        <button type="submit" data-testid="reset-submit" disabled={busy} class="login-submit">
          {busy ? 'Setting the password…' : 'Set the password'}
        </button>
      </form>
    );

  return (
    <main class="login-page" id="main">
      <div class="card login-card">
        <div class="login-brand" aria-hidden="true">
          Sandlab
        </div>
        <h1 id="reset-title">Set a new password</h1>
        {body}
      </div>
    </main>
  );
}
