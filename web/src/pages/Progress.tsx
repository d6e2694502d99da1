// The learner's progress: per lab done/total with a way to resume or start, and their
// lab sessions (running and past).
import { useEffect, useState } from 'preact/hooks';

import { api, errorText, type LabSummary, type SessionView, type User } from '../api';
import { ProgressBar } from '../components/ProgressBar';
import { Empty, ErrorMessage, Spinner } from '../components/ui';
import { ago, clock } from '../format';
import { labProgressState } from './Catalogue';
import './Progress.css';

export function Progress(props: { user: User }) {
  const [labs, setLabs] = useState<LabSummary[] | null>(null);
  const [sessions, setSessions] = useState<SessionView[] | null>(null);
  const [error, setError] = useState('');

  const load = () => {
    setError('');
    Promise.all([api.labs(), api.sessions()])
      .then(([l, s]) => {
        setLabs(l.items);
        // An admin's listing holds everyone's sessions: this page shows only their own.
        setSessions(s.items.filter((x) => x.owner === props.user.id).sort((a, b) => b.created_at_ms - a.created_at_ms));
      })
      .catch((e) => setError(errorText(e)));
  };
  useEffect(() => {
    document.title = 'My progress · Sandlab';
    load();
  }, [props.user.id]);

  if (error)
    return (
      <main class="page">
        <h1>My progress</h1>
        <ErrorMessage message={error} retry={load} />
      </main>
    );
  if (!labs || !sessions) return <Spinner label="Loading your progress" />;

  const title = (slug: string) => labs.find((l) => l.slug === slug)?.title ?? slug;
  const totalDone = labs.reduce((n, l) => n + Math.min(l.progress.done, l.progress.total), 0);
  const total = labs.reduce((n, l) => n + l.progress.total, 0);
  const completed = labs.filter((l) => labProgressState(l) === 'completed').length;
  // Started labs first, then the rest in catalogue order.
  const order = (l: LabSummary) => ({ 'in-progress': 0, completed: 1, 'not-started': 2 })[labProgressState(l)];
  const sorted = labs.slice().sort((a, b) => order(a) - order(b));

  return (
    <main class="page progress-page">
      <h1>My progress</h1>
      <div class="card prog-summary">
        <div>
          <div class="prog-big">
            {completed}/{labs.length}
          </div>
          <div class="muted">labs completed</div>
        </div>
        <div class="prog-summary-bar">
          <ProgressBar done={totalDone} total={total} label="Tasks done over all labs" />
          <div class="muted prog-summary-note">
            {totalDone} of {total} tasks done over all labs
          </div>
        </div>
      </div>

      <h2>Labs</h2>
      {labs.length === 0 ? (
        <Empty>There are no labs on this server yet.</Empty>
      ) : (
        <ul class="prog-list">
          {sorted.map((l) => {
            const st = labProgressState(l);
            return (
              <li class="card progress-item" data-testid="progress-item" data-slug={l.slug} data-progress={st}>
                <div class="prog-item-main">
                  <a class="prog-title" href={`/labs/${encodeURIComponent(l.slug)}`}>
                    {l.title}
                  </a>
                  <span class={`badge${st === 'completed' ? ' ok' : st === 'in-progress' ? ' warn' : ''}`}>
                    {st === 'completed' ? 'Completed' : st === 'in-progress' ? 'In progress' : 'Not started'}
                  </span>
                </div>
                <div class="prog-item-bar">
                  <ProgressBar done={l.progress.done} total={l.progress.total} label={`Tasks done in ${l.title}`} />
                </div>
                <div class="prog-item-action">
                  {l.progress.session ? (
                    <a class="button small" href={`/sessions/${encodeURIComponent(l.progress.session)}`}>
                      Resume
                    </a>
                  ) : (
                    <a class="button small secondary" href={`/labs/${encodeURIComponent(l.slug)}`}>
                      {st === 'not-started' ? 'Start' : st === 'completed' ? 'Open' : 'Continue'}
                    </a>
                  )}
                </div>
              </li>
            );
          })}
        </ul>
      )}

      <h2>Sessions</h2>
      {sessions.length === 0 ? (
        <Empty>You have not started a lab yet; pick one on the labs page.</Empty>
      ) : (
        <div class="table-wrap card prog-sessions">
          <table>
            <thead>
              <tr>
                <th scope="col">Lab</th>
                <th scope="col">State</th>
                <th scope="col">Started</th>
                <th scope="col">Time left</th>
                <th scope="col">
                  <span class="sr-only">Open</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {sessions.map((s) => {
                const running = s.state === 'ready' || s.state === 'starting';
                return (
                  <tr data-testid="session-row" data-id={s.id} data-state={s.state}>
                    <td>{title(s.lab)}</td>
                    <td>
                      <span class={`badge${s.state === 'ready' ? ' ok' : s.state === 'failed' ? ' bad' : s.state === 'starting' ? ' warn' : ''}`}>
                        {s.state}
                      </span>
                      {s.reason && !running && <div class="muted prog-reason">{s.reason}</div>}
                    </td>
                    <td title={new Date(s.created_at_ms).toLocaleString()}>{ago(s.created_at_ms)}</td>
                    <td class="prog-num">{running ? clock(s.ttl_left_ms) : '—'}</td>
                    <td>
                      <a href={`/sessions/${encodeURIComponent(s.id)}`} aria-label={`Open the session of ${title(s.lab)}`}>
                        {running ? 'Open' : 'View'}
                      </a>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </main>
  );
}
