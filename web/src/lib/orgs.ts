// Organisations as the web UI shows them: the API's types and the pure rules of the
// Organisations page (who may do what, the caps as text, the progress table's cells).

export type OrgRole = 'member' | 'instructor' | 'owner';
export const ORG_ROLES: OrgRole[] = ['member', 'instructor', 'owner'];

export interface OrgLimits {
  max_sandboxes: number | null;
  max_memory: string | null;
  max_cpus: number | null;
  max_ttl: string | null;
}

export interface Org {
  id: string;
  slug: string;
  name: string;
  created_at_ms: number;
  limits: OrgLimits;
  /** The caller's role in it; null for an admin who is not a member. */
  role: OrgRole | null;
  /** Its sandboxes that hold resources now. */
  sandboxes: number;
}

export interface NewOrg {
  slug: string;
  name?: string;
  max_sandboxes?: number;
  max_memory?: string;
  max_cpus?: number;
  max_ttl?: string;
}

/** A PATCH: a cap given as null is removed. */
export interface OrgPatch {
  name?: string;
  max_sandboxes?: number | null;
  max_memory?: string | null;
  max_cpus?: number | null;
  max_ttl?: string | null;
}

export interface OrgMember {
  user_id: string;
  username: string;
  role: OrgRole;
  added_at_ms: number;
}

export interface LabDone {
  lab: string;
  title: string;
  tasks: string[];
  done: number;
  total: number;
}

export interface MemberProgress {
  user_id: string;
  username: string;
  role: OrgRole;
  labs: LabDone[];
}

/** What the caller may do in `org`: admins and owners manage, instructors also watch. */
export function orgPowers(org: Org, siteAdmin: boolean): { manage: boolean; watch: boolean } {
  const manage = siteAdmin || org.role === 'owner';
  return { manage, watch: manage || org.role === 'instructor' };
}

/** Whether the Organisations page has anything for this caller. */
export function showsOrgs(orgs: Org[], siteAdmin: boolean): boolean {
  return siteAdmin || orgs.some((o) => orgPowers(o, false).watch);
}

/** The caps in one line, e.g. "3 sandboxes · 2G · 2 CPUs · 4h"; "no caps" when none. */
export function capsText(l: OrgLimits): string {
  const parts = [
    l.max_sandboxes === null ? null : `${l.max_sandboxes} sandbox${l.max_sandboxes === 1 ? '' : 'es'} at once`,
    l.max_memory === null ? null : `${l.max_memory} memory`,
    l.max_cpus === null ? null : `${l.max_cpus} CPU${l.max_cpus === 1 ? '' : 's'}`,
    l.max_ttl === null ? null : `${l.max_ttl} TTL`,
  ].filter((p): p is string => p !== null);
  return parts.length ? parts.join(' · ') : 'no caps';
}

/**
 * The limits form's text fields as a PATCH: an empty field removes the cap; a malformed
 * one is a sentence to show instead.
 */
export function limitsPatch(f: { maxSandboxes: string; maxMemory: string; maxCpus: string; maxTtl: string }): OrgPatch | string {
  const trim = (s: string) => s.trim();
  const sandboxes = trim(f.maxSandboxes);
  const cpus = trim(f.maxCpus);
  let max_sandboxes: number | null = null;
  if (sandboxes !== '') {
    const n = Number(sandboxes);
    if (!Number.isInteger(n) || n < 0) return 'The sandbox cap is a whole number (0 or more).';
    max_sandboxes = n;
  }
  let max_cpus: number | null = null;
  if (cpus !== '') {
    const n = Number(cpus);
    if (!Number.isFinite(n) || n <= 0) return 'The CPU cap is a number above 0, like 2 or 0.5.';
    max_cpus = n;
  }
  return {
    max_sandboxes,
    max_cpus,
    max_memory: trim(f.maxMemory) || null,
    max_ttl: trim(f.maxTtl) || null,
  };
}

/** A progress cell: "2 / 5", with "done" when every task is. */
export function progressCell(d: LabDone | undefined): { text: string; complete: boolean } {
  if (!d) return { text: '–', complete: false };
  return { text: `${d.done} / ${d.total}`, complete: d.total > 0 && d.done >= d.total };
}
