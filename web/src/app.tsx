// The app shell: who is signed in, the header with navigation and the theme switch, and
// the page for the current path. Every page gets the signed-in user, except the pages a
// signed-out visitor opens from a link: sign-up (/signup) and password reset (/reset).
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

import { api, cookie, errorText, setUnauthorizedHandler, type User } from './api';
import { ErrorMessage, Spinner } from './components/ui';
import { showsOrgs } from './lib/orgs';
import { Account } from './pages/Account';
import { Admin } from './pages/Admin';
import { Catalogue } from './pages/Catalogue';
import { LabPage } from './pages/LabPage';
import { Login } from './pages/Login';
import { Orgs } from './pages/Orgs';
import { Playground } from './pages/Playground';
import { Progress } from './pages/Progress';
import { Reset } from './pages/Reset';
import { SessionPage } from './pages/SessionPage';
import { Signup } from './pages/Signup';
import { match, navigate, usePath } from './router';
import { currentTheme, setTheme, useTheme } from './theme';

type Auth = { state: 'loading' } | { state: 'out' } | { state: 'in'; user: User } | { state: 'error'; message: string };

export function App() {
  const path = usePath();
  const [auth, setAuth] = useState<Auth>({ state: 'loading' });

  const loadMe = () => {
    // Signed out (no CSRF cookie, which every login sets): no request that can only
    // answer 401 (it showed as an error in the console on every page).
    if (!cookie('sandlab_csrf')) {
      setAuth({ state: 'out' });
      return;
    }
    return api
      .me()
      .then((user) => setAuth({ state: 'in', user }))
      .catch((e) => setAuth(e?.status === 401 ? { state: 'out' } : { state: 'error', message: errorText(e) }));
  };

  useEffect(() => {
    setUnauthorizedHandler(() => setAuth({ state: 'out' }));
    loadMe();
  }, []);

  if (auth.state === 'loading') return <Spinner label="Loading Sandlab" />;
  if (auth.state === 'error')
    return (
      <main class="page narrow">
        <ErrorMessage message={auth.message} retry={loadMe} />
      </main>
    );
  const signedIn = (user: User) => setAuth({ state: 'in', user });
  const bare = path.split('?')[0];
  if (bare === '/signup')
    return <Signup path={path} signedInAs={auth.state === 'in' ? auth.user.username : null} onSignedIn={signedIn} />;
  if (bare === '/reset') return <Reset path={path} />;
  if (auth.state === 'out' || path.startsWith('/login')) {
    if (auth.state === 'in') {
      navigate('/', true);
      return null;
    }
    return <Login onSignedIn={signedIn} />;
  }
  const user = auth.user;
  const signOut = async () => {
    await api.logout().catch(() => {});
    setAuth({ state: 'out' });
    navigate('/login', true);
  };
  return (
    <Shell user={user} path={path} onSignOut={signOut}>
      {route(path, user)}
    </Shell>
  );
}

function route(path: string, user: User) {
  let m: Record<string, string> | null;
  const p = path.split('?')[0];
  if (p === '/' || p === '/labs') return <Catalogue user={user} />;
  if ((m = match('/labs/:slug', p))) return <LabPage key={m.slug} slug={m.slug} user={user} />;
  if ((m = match('/sessions/:id', p))) return <SessionPage key={m.id} id={m.id} user={user} />;
  if (p === '/playground') return <Playground user={user} />;
  if ((m = match('/playground/:id', p))) return <Playground key={m.id} sandbox={m.id} user={user} />;
  if (p === '/progress') return <Progress user={user} />;
  if (p === '/account') return <Account key={user.id} user={user} />;
  if (p === '/orgs') return <Orgs user={user} />;
  if (p === '/admin') {
    if (user.role !== 'admin')
      return (
        <main class="page narrow">
          <ErrorMessage message="The admin view is for administrators; your account is not one." />
        </main>
      );
    return <Admin user={user} />;
  }
  return (
    <main class="page narrow">
      <ErrorMessage message={`There is no page at ${p}; the labs are listed on the front page.`} />
      <p>
        <a href="/">Back to the labs</a>
      </p>
    </main>
  );
}

function Shell(props: { user: User; path: string; onSignOut: () => void; children: ComponentChildren }) {
  const theme = useTheme();
  // The Organisations link: for admins, and for owners and instructors of one.
  const [orgsLink, setOrgsLink] = useState(props.user.role === 'admin');
  useEffect(() => {
    if (props.user.role === 'admin') return setOrgsLink(true);
    api
      .orgs()
      .then((o) => setOrgsLink(showsOrgs(o, false)))
      .catch(() => setOrgsLink(false));
  }, [props.user.id]);
  const here = (prefix: string) =>
    (prefix === '/' ? props.path === '/' || props.path.startsWith('/labs') || props.path.startsWith('/sessions') : props.path.startsWith(prefix))
      ? 'page'
      : undefined;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href="/">
          Sandlab
        </a>
        <nav aria-label="Main">
          <a href="/" aria-current={here('/')}>
            Labs
          </a>
          <a href="/playground" aria-current={here('/playground')}>
            Playground
          </a>
          <a href="/progress" aria-current={here('/progress')}>
            My progress
          </a>
          {orgsLink && (
            <a href="/orgs" data-testid="nav-orgs" aria-current={here('/orgs')}>
              Organisations
            </a>
          )}
          {props.user.role === 'admin' && (
            <a href="/admin" aria-current={here('/admin')}>
              Admin
            </a>
          )}
        </nav>
        <div class="topbar-end">
          <button
            type="button"
            class="ghost"
            data-testid="theme-toggle"
            aria-label={`Switch to the ${theme === 'dark' ? 'light' : 'dark'} theme`}
            title={`Switch to the ${theme === 'dark' ? 'light' : 'dark'} theme`}
            onClick={() => setTheme(currentTheme() === 'dark' ? 'light' : 'dark')}
          >
            {theme === 'dark' ? '☀' : '☾'}
          </button>
          <a
            class="who"
            href="/account"
            data-testid="whoami"
            aria-current={here('/account')}
            aria-label={`${props.user.username}: your account`}
            title={`Signed in as ${props.user.username} (${props.user.role}): your account`}
          >
            {props.user.username}
          </a>
          <button type="button" class="ghost" data-testid="sign-out" onClick={props.onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <div id="main">{props.children}</div>
    </>
  );
}
