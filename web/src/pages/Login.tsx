// The sign-in page: username and password, the server's sentence on failure (wrong
// password, too many attempts), then the page the user came for. When the server lets
// anyone sign up (GET /auth/config), a link to the sign-up page; a button per single
// sign-on provider, and the sentence of a sign-in the provider sent back refused
// (`/login?error=…`).
import { useEffect, useRef, useState } from 'preact/hooks';

import { api, errorText, type AuthProvider, type User } from '../api';
import { ErrorMessage } from '../components/ui';
import { navigate, queryParam } from '../router';
import './Login.css';

/** Where to go after signing in: `?next=` when it stays on this origin (as its path and
 * query), else `/`. Never throws. */
function nextPath(): string {
  try {
    const next = queryParam(location.pathname + location.search, 'next');
    if (!next) return '/';
    const url = new URL(next, location.origin);
    if (url.origin !== location.origin || /^\/(login|signup|reset|api)(\/|$)/.test(url.pathname)) return '/';
    return url.pathname + url.search;
  } catch {
    return '/';
  }
}

export function Login(props: { onSignedIn: (user: User) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  // A single sign-on refusal arrives as `?error=`.
  const [error, setError] = useState(() => queryParam(location.pathname + location.search, 'error') ?? '');
  const [signupOpen, setSignupOpen] = useState(false);
  const [providers, setProviders] = useState<AuthProvider[]>([]);
  const userRef = useRef<HTMLInputElement>(null);
  const passRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    document.title = 'Sign in · Sandlab';
    userRef.current?.focus();
    // Only open sign-up gets a link: an invite carries its own, and a server that cannot
    // say is taken as closed.
    api
      .authConfig()
      .then((c) => {
        setSignupOpen(c.signup === 'open');
        setProviders(Array.isArray(c.providers) ? c.providers : []);
      })
      .catch(() => {});
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    if (!username.trim() || !password) {
      setError(!username.trim() ? 'Enter your username.' : 'Enter your password.');
      (!username.trim() ? userRef : passRef).current?.focus();
      return;
    }
    setBusy(true);
    setError('');
    let user: User;
    try {
      user = (await api.login(username.trim(), password)).user;
    } catch (err) {
      setError(errorText(err));
      setPassword('');
      setBusy(false);
      passRef.current?.focus();
      return;
    }
    // Signed in: stay on the page that asked for it; from /login go where `next` says.
    if (location.pathname.startsWith('/login')) {
      try {
        navigate(nextPath(), true);
      } catch {
        navigate('/', true);
      }
    }
    props.onSignedIn(user);
  };

  return (
    <main class="login-page" id="main">
      <form class="card login-card" onSubmit={submit} noValidate aria-labelledby="login-title">
        <div class="login-brand" aria-hidden="true">
          Sandlab
        </div>
        <h1 id="login-title">Sign in</h1>
        <p class="muted login-sub">Hands-on labs in real Linux sandboxes.</p>
        <label for="login-username">Username</label>
        <input
          id="login-username"
          ref={userRef}
          data-testid="login-username"
          name="username"
          autocomplete="username"
          autocapitalize="none"
          spellcheck={false}
          value={username}
          onInput={(e) => setUsername((e.target as HTMLInputElement).value)}
        />
        <label for="login-password">Password</label>
        <input
          id="login-password"
          ref={passRef}
          data-testid="login-password"
          name="password"
          type="password"
          autocomplete="current-password"
          value={password}
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
        />
        <div class="login-error">{error && <ErrorMessage message={error} />}</div>
        <button type="submit" data-testid="login-submit" disabled={busy} class="login-submit">
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {providers.length > 0 && (
          <div class="login-providers" data-testid="login-providers">
            <p class="muted login-or">or</p>
            {providers.map((p) => (
              <a
                key={p.name}
                class="button login-provider"
                data-testid={`login-provider-${p.name}`}
                href={`${p.start_url}?next=${encodeURIComponent(nextPath())}`}
              >
                {p.title}
              </a>
            ))}
          </div>
        )}
        {signupOpen && (
          <p class="login-alt">
            New here?{' '}
            <a href="/signup" data-testid="signup-link">
              Create an account
            </a>
          </p>
        )}
      </form>
    </main>
  );
}
