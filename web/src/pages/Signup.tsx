// The sign-up page (/signup, /signup?invite=…): what the server allows (GET /auth/config)
// decides what it shows. Open: username and password; by invite: the same with the
// invite from the link; closed: one sentence and the way back to sign in. A new account
// is signed in at once (POST /auth/signup sets the login cookie) and lands on the labs.
import { useEffect, useRef, useState } from 'preact/hooks';

import { api, errorText, type SignupMode, type User } from '../api';
import { ErrorMessage, Spinner } from '../components/ui';
import { newPasswordProblem } from '../lib/accounts';
import { navigate, queryParam } from '../router';
import './Login.css';

export function Signup(props: { path: string; signedInAs: string | null; onSignedIn: (user: User) => void }) {
  const [mode, setMode] = useState<SignupMode | null>(null);
  const [loadError, setLoadError] = useState('');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [repeat, setRepeat] = useState('');
  const [invite, setInvite] = useState(queryParam(props.path, 'invite') ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const userRef = useRef<HTMLInputElement>(null);
  const passRef = useRef<HTMLInputElement>(null);
  const repeatRef = useRef<HTMLInputElement>(null);
  const inviteRef = useRef<HTMLInputElement>(null);

  const load = () => {
    setLoadError('');
    api
      .authConfig()
      .then((c) => setMode(c.signup))
      .catch((e) => setLoadError(errorText(e)));
  };
  useEffect(() => {
    document.title = 'Create an account · Sandlab';
    load();
  }, []);
  useEffect(() => {
    if (mode && mode !== 'closed') userRef.current?.focus();
  }, [mode]);

  // Shows the sentence and puts the focus where the fix is typed.
  const refuse = (message: string, ref: { current: HTMLInputElement | null }) => {
    setError(message);
    ref.current?.focus();
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    if (!username.trim()) return refuse('Choose a username.', userRef);
    const problem = newPasswordProblem(password, repeat);
    // The password itself fine: the repetition is what to fix.
    if (problem) return refuse(problem, newPasswordProblem(password, password) ? passRef : repeatRef);
    if (mode === 'invite' && !invite.trim()) return refuse('Sign-up needs an invite; paste the one from your invite link.', inviteRef);
    setBusy(true);
    setError('');
    let user: User;
    try {
      user = await api.signup(username.trim(), password, invite.trim() || undefined);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
      return;
    }
    navigate('/', true);
    props.onSignedIn(user);
  };

  let body;
  if (loadError) body = <ErrorMessage message={loadError} retry={load} />;
  else if (!mode) body = <Spinner label="Loading" />;
  else if (props.signedInAs)
    body = (
      <p class="login-note" data-testid="signup-signed-in">
        You are signed in as {props.signedInAs}; sign out first to create another account. <a href="/">Back to the labs</a>
      </p>
    );
  else if (mode === 'closed')
    body = (
      <p class="login-note" data-testid="signup-closed">
        Sign-up is closed on this server; an administrator can create an account for you. <a href="/login">Sign in</a>
      </p>
    );
  else
    body = (
      <form onSubmit={submit} noValidate aria-labelledby="signup-title" class="login-form">
        <label for="signup-username">Username</label>
        <input
          id="signup-username"
          ref={userRef}
          data-testid="signup-username"
          name="username"
          autocomplete="username"
          autocapitalize="none"
          spellcheck={false}
          value={username}
          onInput={(e) => setUsername((e.target as HTMLInputElement).value)}
        />
        <label for="signup-password">Password</label>
        <input
          id="signup-password"
          ref={passRef}
          data-testid="signup-password"
          name="password"
          type="password"
          autocomplete="new-password"
          aria-describedby="signup-password-hint"
          value={password}
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
        />
        <span id="signup-password-hint" class="muted login-hint">
          At least 8 characters.
        </span>
        <label for="signup-repeat">Repeat the password</label>
        <input
          id="signup-repeat"
          ref={repeatRef}
          data-testid="signup-repeat"
          name="repeat"
          type="password"
          autocomplete="new-password"
          value={repeat}
          onInput={(e) => setRepeat((e.target as HTMLInputElement).value)}
        />
        {(mode === 'invite' || invite) && (
          <>
            <label for="signup-invite">Invite</label>
            <input
              id="signup-invite"
              ref={inviteRef}
              data-testid="signup-invite"
              name="invite"
              autocomplete="off"
              autocapitalize="none"
              spellcheck={false}
              value={invite}
              onInput={(e) => setInvite((e.target as HTMLInputElement).value)}
            />
          </>
        )}
        <div class="login-error">{error && <ErrorMessage message={error} />}</div>
        <button type="submit" data-testid="signup-submit" disabled={busy} class="login-submit">
          {busy ? 'Creating the account…' : 'Create the account'}
        </button>
        <p class="login-alt">
          Have an account? <a href="/login">Sign in</a>
        </p>
      </form>
    );

  return (
    <main class="login-page" id="main">
      <div class="card login-card">
        <div class="login-brand" aria-hidden="true">
          Sandlab
        </div>
        <h1 id="signup-title">Create an account</h1>
        <p class="muted login-sub">Hands-on labs in real Linux sandboxes.</p>
        {body}
      </div>
    </main>
  );
}
