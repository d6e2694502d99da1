// The lab catalogue: a grid of cards with search and filters. The filters live in the URL
// query (`?q=&tag=&kind=&progress=`), so a reload or the back button keeps them.
import { useEffect, useMemo, useState } from 'preact/hooks';

import { api, errorText, type LabProblem, type LabSummary, type User } from '../api';
import { ProgressBar } from '../components/ProgressBar';
import { Empty, ErrorMessage, Spinner } from '../components/ui';
import { duration } from '../format';
import { navigate, usePath } from '../router';
import './Catalogue.css';

type ProgressFilter = '' | 'not-started' | 'in-progress' | 'completed';

export function labProgressState(l: LabSummary): Exclude<ProgressFilter, ''> {
  const { done, total, session } = l.progress;
  if (total > 0 && done >= total) return 'completed';
  if (done > 0 || session) return 'in-progress';
  return 'not-started';
}

const PROGRESS_LABEL: Record<Exclude<ProgressFilter, ''>, string> = {
  'not-started': 'Not started',
  'in-progress': 'In progress',
  completed: 'Completed',
};

export function Catalogue(props: { user: User }) {
  const path = usePath();
  const [labs, setLabs] = useState<LabSummary[] | null>(null);
  const [error, setError] = useState('');
  // Authors and admins see what keeps labs out of the catalogue.
  const [problems, setProblems] = useState<LabProblem[]>([]);
  const canSeeProblems = props.user.role !== 'learner';

  const load = () => {
    setError('');
    api
      .labs()
      .then((r) => setLabs(r.items))
      .catch((e) => setError(errorText(e)));
    if (canSeeProblems) {
      api
        .labProblems()
        .then((r) => setProblems(r.items))
        .catch(() => setProblems([]));
    }
  };
  useEffect(() => {
    document.title = 'Labs · Sandlab';
    load();
  }, []);

  const params = new URLSearchParams(path.includes('?') ? path.slice(path.indexOf('?') + 1) : '');
  const q = params.get('q') ?? '';
  const tag = params.get('tag') ?? '';
  const kind = params.get('kind') ?? '';
  const progress = (params.get('progress') ?? '') as ProgressFilter;

  const setParam = (name: string, value: string) => {
    const p = new URLSearchParams(params);
    if (value) p.set(name, value);
    else p.delete(name);
    const s = p.toString();
    const base = path.split('?')[0] || '/';
    const y = window.scrollY;
    navigate(s ? `${base}?${s}` : base, true);
    window.scrollTo(0, y);
  };

  const tags = useMemo(() => [...new Set((labs ?? []).flatMap((l) => l.tags))].sort(), [labs]);
  const kinds = useMemo(() => [...new Set((labs ?? []).map((l) => l.kind))].sort(), [labs]);

  const shown = (labs ?? []).filter((l) => {
    if (tag && !l.tags.includes(tag)) return false;
    if (kind && l.kind !== kind) return false;
    if (progress && labProgressState(l) !== progress) return false;
    const needle = q.trim().toLowerCase();
    if (needle) {
      const hay = [l.title, l.description, ...l.tags].join('\n').toLowerCase();
      if (!needle.split(/\s+/).every((w) => hay.includes(w))) return false;
    }
    return true;
  });
  const filtered = !!(q || tag || kind || progress);

  return (
    <main class="page catalogue">
      <div class="cat-head">
        <div>
          <h1>Labs</h1>
          <p class="muted cat-sub">Pick a lab: each one starts its own Linux machines with a terminal in your browser.</p>
        </div>
      </div>
      <form class="cat-filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <div class="field cat-search">
          <label for="cat-search">Search</label>
          <input
            id="cat-search"
            type="search"
            data-testid="catalogue-search"
            placeholder="Title, description or tag"
            value={q}
            onInput={(e) => setParam('q', (e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field">
          <label for="filter-tag">Tag</label>
          <select id="filter-tag" data-testid="filter-tag" value={tag} onChange={(e) => setParam('tag', (e.target as HTMLSelectElement).value)}>
            <option value="">All tags</option>
            {tags.map((t) => (
              <option value={t}>{t}</option>
            ))}
            {tag && !tags.includes(tag) && <option value={tag}>{tag}</option>}
          </select>
        </div>
        <div class="field">
          <label for="filter-kind">Kind</label>
          <select id="filter-kind" data-testid="filter-kind" value={kind} onChange={(e) => setParam('kind', (e.target as HTMLSelectElement).value)}>
            <option value="">All kinds</option>
            {['tutorial', 'challenge', ...kinds.filter((k) => k !== 'tutorial' && k !== 'challenge')].map((k) => (
              <option value={k}>{k.charAt(0).toUpperCase() + k.slice(1)}</option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="filter-progress">Progress</label>
          <select
            id="filter-progress"
            data-testid="filter-progress"
            value={progress}
            onChange={(e) => setParam('progress', (e.target as HTMLSelectElement).value)}
          >
            <option value="">Any progress</option>
            <option value="not-started">Not started</option>
            <option value="in-progress">In progress</option>
            <option value="completed">Completed</option>
          </select>
        </div>
        {filtered && (
          <button type="button" class="secondary cat-clear" onClick={() => navigate(path.split('?')[0] || '/', true)}>
            Clear filters
          </button>
        )}
      </form>

      {error && <ErrorMessage message={error} retry={load} />}
      {problems.length > 0 && (
        <details class="card cat-problems" data-testid="lab-problems">
          <summary>
            {problems.length} problem{problems.length === 1 ? '' : 's'} keep labs out of the catalogue (only authors and admins see this)
          </summary>
          <ul>
            {problems.map((p) => (
              <li>
                <code>
                  {p.file}
                  {p.line > 0 ? `:${p.line}` : ''}
                </code>{' '}
                {p.message}
              </li>
            ))}
          </ul>
        </details>
      )}
      {!labs && !error && <Spinner label="Loading the labs" />}
      {labs && (
        <>
          <p class="muted cat-count" aria-live="polite">
            {filtered ? `${shown.length} of ${labs.length} labs match.` : `${labs.length} labs.`}
          </p>
          {shown.length === 0 ? (
            <Empty>
              {labs.length === 0
                ? 'There are no labs on this server yet.'
                : 'No lab matches these filters; try another search or clear the filters.'}
            </Empty>
          ) : (
            <ul class="cat-grid">
              {shown.map((l) => (
                <LabCard lab={l} />
              ))}
            </ul>
          )}
        </>
      )}
    </main>
  );
}

function LabCard({ lab }: { lab: LabSummary }) {
  const st = labProgressState(lab);
  const { done, total, session } = lab.progress;
  return (
    <li class="card lab-card" data-testid="lab-card" data-slug={lab.slug} data-progress={st}>
      <div class="row lab-card-badges">
        <span class={`badge kind-${lab.kind}`}>{lab.kind}</span>
        {lab.draft && (
          <span class="badge warn" title="Not published: only authors and admins see it" data-testid="draft-badge">
            draft
          </span>
        )}
        {st !== 'not-started' && <span class={`badge${st === 'completed' ? ' ok' : ' warn'}`}>{PROGRESS_LABEL[st]}</span>}
      </div>
      <h2 class="lab-card-title">
        <a href={`/labs/${encodeURIComponent(lab.slug)}`} class="lab-card-link">
          {lab.title}
        </a>
      </h2>
      <p class="lab-card-desc">{lab.description}</p>
      {lab.tags.length > 0 && (
        <ul class="lab-card-tags" aria-label="Tags">
          {lab.tags.map((t) => (
            <li class="tag">{t}</li>
          ))}
        </ul>
      )}
      <div class="lab-card-foot">
        <div class="lab-card-meta muted">
          <span>
            {lab.tasks} {lab.tasks === 1 ? 'task' : 'tasks'}
          </span>
          <span aria-hidden="true">·</span>
          <span>
            {lab.nodes} {lab.nodes === 1 ? 'machine' : 'machines'}
          </span>
          <span aria-hidden="true">·</span>
          <span>{duration(lab.ttl_ms)}</span>
        </div>
        <ProgressBar done={done} total={total} />
        {session && (
          <a class="button small lab-card-resume" href={`/sessions/${encodeURIComponent(session)}`}>
            Resume
          </a>
        )}
      </div>
    </li>
  );
}
