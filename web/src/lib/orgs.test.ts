// Unit tests of the Organisations page's rules (`npm run test:unit`).
// @ts-ignore -- no Node types in this project
import nodeAssert from 'node:assert/strict';
// @ts-ignore -- no Node types in this project
import { test as nodeTest } from 'node:test';

import { capsText, limitsPatch, orgPowers, progressCell, showsOrgs, type Org } from './orgs';

const assert = nodeAssert as {
  equal(actual: unknown, expected: unknown, message?: string): void;
  deepEqual(actual: unknown, expected: unknown, message?: string): void;
};
const test = nodeTest as (name: string, fn: () => void | Promise<void>) => void;

const org = (role: Org['role']): Org => ({
  id: 'org-x',
  slug: 'acme',
  name: 'Acme',
  created_at_ms: 0,
  limits: { max_sandboxes: null, max_memory: null, max_cpus: null, max_ttl: null },
  role,
  sandboxes: 0,
});

test('owners and admins manage; instructors watch; members neither', () => {
  assert.deepEqual(orgPowers(org('owner'), false), { manage: true, watch: true });
  assert.deepEqual(orgPowers(org('instructor'), false), { manage: false, watch: true });
  assert.deepEqual(orgPowers(org('member'), false), { manage: false, watch: false });
  assert.deepEqual(orgPowers(org(null), true), { manage: true, watch: true });
  assert.equal(showsOrgs([org('member')], false), false);
  assert.equal(showsOrgs([org('member'), org('instructor')], false), true);
  assert.equal(showsOrgs([], true), true);
});

test('caps read as one line', () => {
  assert.equal(capsText(org('owner').limits), 'no caps');
  assert.equal(
    capsText({ max_sandboxes: 1, max_memory: '2G', max_cpus: 0.5, max_ttl: '4h' }),
    '1 sandbox at once · 2G memory · 0.5 CPUs · 4h TTL',
  );
});

test('the limits form becomes a PATCH; empty removes a cap; bad numbers are refused', () => {
  assert.deepEqual(limitsPatch({ maxSandboxes: ' 3 ', maxMemory: '2G', maxCpus: '', maxTtl: '' }), {
    max_sandboxes: 3,
    max_cpus: null,
    max_memory: '2G',
    max_ttl: null,
  });
  assert.equal(typeof limitsPatch({ maxSandboxes: '1.5', maxMemory: '', maxCpus: '', maxTtl: '' }), 'string');
  assert.equal(typeof limitsPatch({ maxSandboxes: '', maxMemory: '', maxCpus: '0', maxTtl: '' }), 'string');
});

test('a progress cell shows done of total', () => {
  assert.deepEqual(progressCell(undefined), { text: '–', complete: false });
  assert.deepEqual(progressCell({ lab: 'a', title: 'A', tasks: ['x'], done: 1, total: 2 }), { text: '1 / 2', complete: false });
  assert.deepEqual(progressCell({ lab: 'a', title: 'A', tasks: ['x', 'y'], done: 2, total: 2 }), { text: '2 / 2', complete: true });
});
