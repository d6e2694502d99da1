// The Organisations page, for admins and for owners and instructors of an organisation:
// admins create organisations; owners (and admins) edit the caps and the members; the
// members' progress per lab is a table for instructors too. Plain members have nothing
// to do here (their organisation's labs are in the catalogue).
import { useEffect, useState } from 'preact/hooks';

import { api, errorText, type User } from '../api';
import { ConfirmButton, Empty, ErrorMessage, Spinner } from '../components/ui';
import { capsText, limitsPatch, ORG_ROLES, orgPowers, progressCell, type MemberProgress, type Org, type OrgMember, type OrgRole } from '../lib/orgs';
import './Admin.css';
import './Orgs.css';

const value = (e: Event) => (e.target as HTMLInputElement | HTMLSelectElement).value;

export function Orgs(props: { user: User }) {
  const admin = props.user.role === 'admin';
  const [orgs, setOrgs] = useState<Org[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [chosen, setChosen] = useState<string | null>(null);

  const load = async () => {
    try {
      const all = (await api.orgs()).filter((o) => orgPowers(o, admin).watch);
      setOrgs(all);
      setError(null);
      setChosen((c) => (c && all.some((o) => o.id === c) ? c : (all[0]?.id ?? null)));
    } catch (e) {
      setError(errorText(e));
    }
  };
  useEffect(() => {
    document.title = 'Organisations · Sandlab';
    load();
  }, [props.user.id]);

  const org = orgs?.find((o) => o.id === chosen) ?? null;
  return (
    <main class="page admin orgs-page">
      <h1>Organisations</h1>
      {admin && <CreateOrg onCreated={(o) => load().then(() => setChosen(o.id))} />}
      {error && <ErrorMessage message={error} retry={load} />}
      {!orgs && !error && <Spinner label="Loading organisations" />}
      {orgs && orgs.length === 0 && (
        <Empty>{admin ? 'No organisations yet.' : 'You are not an instructor or owner of any organisation.'}</Empty>
      )}
      {orgs && orgs.length > 0 && (
        <div class="field orgs-pick">
          <label for="org-select">Organisation</label>
          <select id="org-select" data-testid="org-select" value={chosen ?? ''} onChange={(e) => setChosen(value(e))}>
            {orgs.map((o) => (
              <option key={o.id} value={o.id}>
                {o.name} ({o.slug})
              </option>
            ))}
          </select>
        </div>
      )}
      {org && <OrgDetail key={org.id} org={org} admin={admin} onChanged={load} />}
    </main>
  );
}

function CreateOrg(props: { onCreated: (o: Org) => void }) {
  const [slug, setSlug] = useState('');
  const [name, setName] = useState('');
  const [max, setMax] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setError(null);
    const n = max.trim() === '' ? undefined : Number(max);
    if (n !== undefined && (!Number.isInteger(n) || n < 0)) return setError('The sandbox cap is a whole number (0 or more).');
    setBusy(true);
    try {
      const org = await api.createOrg({ slug: slug.trim(), name: name.trim() || undefined, max_sandboxes: n });
      setSlug('');
      setName('');
      setMax('');
      props.onCreated(org);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="org-new-h">
      <h2 id="org-new-h">New organisation</h2>
      {error && <ErrorMessage message={error} />}
      <form class="card admin-add" onSubmit={submit} aria-label="Create an organisation">
        <div class="field">
          <label for="org-slug">Slug</label>
          <input id="org-slug" data-testid="org-slug" required placeholder="acme" value={slug} onInput={(e) => setSlug(value(e))} />
        </div>
        <div class="field">
          <label for="org-name">Name</label>
          <input id="org-name" data-testid="org-name" placeholder="Acme Corp" value={name} onInput={(e) => setName(value(e))} />
        </div>
        <div class="field">
          <label for="org-max">Sandboxes at once</label>
          <input id="org-max" type="number" min={0} step={1} placeholder="no cap" value={max} onInput={(e) => setMax(value(e))} />
        </div>
        <div class="field admin-add-go">
          <button type="submit" data-testid="org-create" disabled={busy}>
            {busy ? 'Creating…' : 'Create'}
          </button>
        </div>
      </form>
    </section>
  );
}

function OrgDetail(props: { org: Org; admin: boolean; onChanged: () => Promise<void> }) {
  const { org } = props;
  const { manage } = orgPowers(org, props.admin);
  const [members, setMembers] = useState<OrgMember[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const loadMembers = async () => {
    try {
      setMembers(await api.orgMembers(org.id));
    } catch (e) {
      setError(errorText(e));
    }
  };
  useEffect(() => {
    loadMembers();
  }, [org.id]);

  const act = async (f: () => Promise<unknown>) => {
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(errorText(e));
    }
    await loadMembers();
  };

  return (
    <>
      <section aria-labelledby="org-h" data-testid="org-detail">
        <h2 id="org-h">
          {org.name} <span class="badge">{org.role ?? 'admin'}</span>
        </h2>
        <p class="orgs-caps">
          Caps: {capsText(org.limits)}. Sandboxes running now: {org.sandboxes}.
        </p>
        {manage && <Limits org={org} onSaved={props.onChanged} />}
        {manage && (
          <ConfirmButton testid="org-delete" onConfirm={() => api.deleteOrg(org.id).then(props.onChanged, (e) => setError(errorText(e)))}>
            Delete organisation
          </ConfirmButton>
        )}
      </section>
      <section aria-labelledby="org-members-h">
        <h2 id="org-members-h">
          Members {members && <span class="badge">{members.length}</span>}
        </h2>
        {error && <ErrorMessage message={error} />}
        {manage && <AddMember onAdd={(user, role) => act(() => api.addOrgMember(org.id, user, role))} />}
        {!members && !error && <Spinner label="Loading members" />}
        {members && members.length === 0 && <Empty>No members yet.</Empty>}
        {members && members.length > 0 && (
          <div class="table-wrap">
            <table data-testid="org-members">
              <caption class="visually-hidden">Members of {org.name}</caption>
              <thead>
                <tr>
                  <th scope="col">User</th>
                  <th scope="col">Role</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {members.map((m) => (
                  <tr key={m.user_id} data-username={m.username}>
                    <td>{m.username}</td>
                    <td>
                      {manage ? (
                        <select
                          aria-label={`Role of ${m.username}`}
                          value={m.role}
                          onChange={(e) => act(() => api.updateOrgMember(org.id, m.user_id, value(e) as OrgRole))}
                        >
                          {ORG_ROLES.map((r) => (
                            <option key={r} value={r}>
                              {r}
                            </option>
                          ))}
                        </select>
                      ) : (
                        m.role
                      )}
                    </td>
                    <td class="admin-act">
                      {manage && (
                        <ConfirmButton onConfirm={() => act(() => api.removeOrgMember(org.id, m.user_id))}>Remove</ConfirmButton>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <ProgressTable org={org} />
    </>
  );
}

function Limits(props: { org: Org; onSaved: () => Promise<void> }) {
  const l = props.org.limits;
  const [f, setF] = useState({
    maxSandboxes: l.max_sandboxes?.toString() ?? '',
    maxMemory: l.max_memory ?? '',
    maxCpus: l.max_cpus?.toString() ?? '',
    maxTtl: l.max_ttl ?? '',
  });
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const field = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: value(e) });
  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    const patch = limitsPatch(f);
    if (typeof patch === 'string') return setError(patch);
    try {
      await api.updateOrg(props.org.id, patch);
      setSaved(true);
      await props.onSaved();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const input = (id: string, label: string, k: keyof typeof f, placeholder: string) => (
    <div class="field">
      <label for={id}>{label}</label>
      <input id={id} data-testid={id} placeholder={placeholder} value={f[k]} onInput={field(k)} />
    </div>
  );
  return (
    <form class="card orgs-limits" onSubmit={save} aria-label="Caps of the organisation">
      {input('cap-sandboxes', 'Sandboxes at once', 'maxSandboxes', 'no cap')}
      {input('cap-memory', 'Memory per sandbox', 'maxMemory', 'e.g. 2G')}
      {input('cap-cpus', 'CPUs per sandbox', 'maxCpus', 'e.g. 2')}
      {input('cap-ttl', 'Longest TTL', 'maxTtl', 'e.g. 4h')}
      <div class="field admin-add-go">
        <button type="submit" data-testid="caps-save">
          Save caps
        </button>
      </div>
      {error && <ErrorMessage message={error} />}
      {saved && <p class="admin-done">Saved.</p>}
    </form>
  );
}

function AddMember(props: { onAdd: (user: string, role: OrgRole) => Promise<void> }) {
  const [user, setUser] = useState('');
  const [role, setRole] = useState<OrgRole>('member');
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!user.trim()) return;
    await props.onAdd(user.trim(), role);
    setUser('');
  };
  return (
    <form class="card admin-add" onSubmit={submit} aria-label="Add a member">
      <div class="field">
        <label for="member-user">Username</label>
        <input id="member-user" data-testid="member-user" required value={user} onInput={(e) => setUser(value(e))} />
      </div>
      <div class="field">
        <label for="member-role">Role</label>
        <select id="member-role" data-testid="member-role" value={role} onChange={(e) => setRole(value(e) as OrgRole)}>
          {ORG_ROLES.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      </div>
      <div class="field" />
      <div class="field admin-add-go">
        <button type="submit" data-testid="member-add">
          Add member
        </button>
      </div>
    </form>
  );
}

/** Each member's done tasks: every lab as a column, or one lab with its tasks. */
function ProgressTable(props: { org: Org }) {
  const [lab, setLab] = useState('');
  const [rows, setRows] = useState<MemberProgress[] | null>(null);
  const [labs, setLabs] = useState<{ lab: string; title: string }[]>([]);
  const [error, setError] = useState<string | null>(null);
  const load = async () => {
    try {
      const r = await api.orgProgress(props.org.id, lab || undefined);
      setRows(r);
      if (!lab && r[0]) setLabs(r[0].labs.map((l) => ({ lab: l.lab, title: l.title })));
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  };
  useEffect(() => {
    load();
  }, [props.org.id, lab]);
  const columns = lab ? labs.filter((l) => l.lab === lab) : labs;
  return (
    <section aria-labelledby="org-progress-h">
      <h2 id="org-progress-h">Progress</h2>
      <div class="field orgs-pick">
        <label for="progress-lab">Lab</label>
        <select id="progress-lab" data-testid="progress-lab" value={lab} onChange={(e) => setLab(value(e))}>
          <option value="">Every lab</option>
          {labs.map((l) => (
            <option key={l.lab} value={l.lab}>
              {l.title}
            </option>
          ))}
        </select>
      </div>
      {error && <ErrorMessage message={error} retry={load} />}
      {!rows && !error && <Spinner label="Loading progress" />}
      {rows && rows.length === 0 && <Empty>No members yet.</Empty>}
      {rows && rows.length > 0 && (
        <div class="table-wrap">
          <table data-testid="org-progress">
            <caption class="visually-hidden">Tasks done per member and lab</caption>
            <thead>
              <tr>
                <th scope="col">Member</th>
                {columns.map((c) => (
                  <th scope="col" key={c.lab}>
                    {c.title}
                  </th>
                ))}
                {lab && <th scope="col">Tasks done</th>}
              </tr>
            </thead>
            <tbody>
              {rows.map((m) => (
                <tr key={m.user_id} data-username={m.username}>
                  <td>{m.username}</td>
                  {columns.map((c) => {
                    const cell = progressCell(m.labs.find((l) => l.lab === c.lab));
                    return (
                      <td key={c.lab} class={cell.complete ? 'num orgs-complete' : 'num'}>
                        {cell.text}
                      </td>
                    );
                  })}
                  {lab && <td>{m.labs[0]?.tasks.join(', ') || '–'}</td>}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
