// One lab before it starts: what it is about, its machines and tasks, the learner's
// progress, and the button that starts a session (or resumes the running one).
import { useEffect, useState } from 'preact/hooks';

import { api, ApiError, errorText, type LabDetail, type User } from '../api';
import { ProgressBar } from '../components/ProgressBar';
import { ConfirmButton, ErrorMessage, Spinner } from '../components/ui';
import { duration, taskName } from '../format';
import { startLabSession } from '../lib/session';
import './LabPage.css';

export function LabPage(props: { slug: string; user: User }) {
  const [lab, setLab] = useState<LabDetail | null>(null);
  const [loadError, setLoadError] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  // The last start failed on the quota: offer the pages where sandboxes are stopped.
  const [overQuota, setOverQuota] = useState(false);

  const load = () => {
    setLoadError('');
    api
      .lab(props.slug)
      .then((l) => {
        setLab(l);
        document.title = `${l.title} · Sandlab`;
      })
      .catch((e) => setLoadError(errorText(e)));
  };
  useEffect(load, [props.slug]);

  /** Starts a session (ending `replacing` first) and opens it; on failure says why. */
  const start = async (replacing?: string, fresh = false) => {
    setBusy(true);
    setError('');
    setOverQuota(false);
    try {
      await startLabSession(props.slug, replacing, fresh);
    } catch (e) {
      setError(errorText(e));
      setOverQuota(e instanceof ApiError && e.code === 'quota_exceeded');
      setBusy(false);
      if (replacing) load();
    }
  };

  if (loadError)
    return (
      <main class="page narrow">
        <ErrorMessage message={loadError} retry={load} />
        <p>
          <a href="/">Back to the labs</a>
        </p>
      </main>
    );
  if (!lab) return <Spinner label="Loading the lab" />;

  const checked = lab.task_list.filter((t) => !t.init);
  const session = lab.progress.session;
  return (
    <main class="page lab-page">
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href="/">Labs</a> <span aria-hidden="true">/</span> <span aria-current="page">{lab.title}</span>
      </nav>
      <div class="lab-layout">
        <section class="lab-main">
          <div class="row">
            <span class={`badge kind-${lab.kind}`}>{lab.kind}</span>
            {lab.tags.map((t) => (
              <a class="tag tag-link" href={`/labs?tag=${encodeURIComponent(t)}`}>
                {t}
              </a>
            ))}
          </div>
          <h1 class="lab-title">{lab.title}</h1>
          <p class="lab-desc">{lab.description}</p>

          <h2>Tasks</h2>
          {checked.length === 0 ? (
            <p class="muted">This lab has no checked tasks; explore freely.</p>
          ) : (
            <ol class="lab-tasks">
              {checked.map((t) => (
                <li>
                  {taskName(t.id)}
                  {t.needs.length > 0 && <span class="muted"> (after {t.needs.map(taskName).join(', ')})</span>}
                </li>
              ))}
            </ol>
          )}

          <h2>Machines</h2>
          <div class="table-wrap">
            <table class="lab-nodes">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Image</th>
                  <th scope="col">Memory</th>
                  <th scope="col">CPUs</th>
                  <th scope="col">Network</th>
                </tr>
              </thead>
              <tbody>
                {lab.playground.map((n) => (
                  <tr>
                    <td>
                      <code>{n.name}</code>
                    </td>
                    <td>{n.image}</td>
                    <td>{n.memory}</td>
                    <td>{n.cpus}</td>
                    <td>{n.network}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>

        <aside class="card lab-side" aria-label="Start">
          <dl class="lab-facts">
            <div>
              <dt>Tasks</dt>
              <dd>{lab.tasks}</dd>
            </div>
            <div>
              <dt>Machines</dt>
              <dd>{lab.nodes}</dd>
            </div>
            <div>
              <dt>Time limit</dt>
              <dd>{duration(lab.ttl_ms)}</dd>
            </div>
          </dl>
          <div class="lab-progress">
            <div class="lab-progress-label">Your progress</div>
            <ProgressBar done={lab.progress.done} total={lab.progress.total} />
          </div>
          {session ? (
            <>
              <p class="muted lab-side-note">You have this lab running.</p>
              <a class="button lab-cta" data-testid="resume-lab" href={`/sessions/${encodeURIComponent(session)}`}>
                Resume the lab
              </a>
              <ConfirmButton
                class="secondary lab-cta"
                confirm="Stop it and start fresh?"
                disabled={busy}
                onConfirm={() => start(session, true)}
              >
                Start over
              </ConfirmButton>
            </>
          ) : lab.progress.done > 0 ? (
            <>
              {/* Done before: practise from scratch (the progress stays), or carry on. */}
              <button type="button" class="lab-cta" data-testid="start-fresh" disabled={busy} onClick={() => start(undefined, true)}>
                {busy ? 'Starting the machines…' : 'Start fresh: check every task again'}
              </button>
              <button type="button" class="secondary lab-cta" data-testid="start-lab" disabled={busy} onClick={() => start()}>
                Continue with the tasks I did
              </button>
            </>
          ) : (
            <button type="button" class="lab-cta" data-testid="start-lab" disabled={busy} onClick={() => start()}>
              {busy ? 'Starting the machines…' : 'Start the lab'}
            </button>
          )}
          {busy && <p class="muted lab-side-note" role="status">This takes a few seconds.</p>}
          {error && <ErrorMessage message={error} />}
          {overQuota && (
            <p class="row" data-testid="quota-actions">
              <a class="button secondary small" href="/progress">
                Your lab sessions
              </a>
              <a class="button secondary small" href="/playground">
                Your playgrounds
              </a>
            </p>
          )}
          {lab.progress.done > 0 && !session && (
            <p class="muted lab-side-note">Tasks you already did stay done; the machines start fresh.</p>
          )}
        </aside>
      </div>
    </main>
  );
}
