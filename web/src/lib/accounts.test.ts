// Unit tests of the account pages' rules (`npm run test:unit`): the new-password check,
// full link addresses and an invite's state.
// @ts-ignore -- no Node types in this project
import nodeAssert from 'node:assert/strict';
// @ts-ignore -- no Node types in this project
import { test as nodeTest } from 'node:test';

import { absoluteUrl, inviteState, newPasswordProblem } from './accounts';

const assert = nodeAssert as {
  equal(actual: unknown, expected: unknown, message?: string): void;
  match(actual: string, expected: RegExp, message?: string): void;
};
const test = nodeTest as (name: string, fn: () => void | Promise<void>) => void;

test('a new password is refused when short or not repeated exactly, accepted otherwise', () => {
  assert.match(newPasswordProblem('', '') ?? '', /Type the new password/);
  assert.match(newPasswordProblem('short', 'short') ?? '', /at least 8 characters/);
  assert.match(newPasswordProblem('long enough', 'long enougH') ?? '', /differ/);
  assert.equal(newPasswordProblem('long enough', 'long enough'), null);
  // Characters, not bytes: eight accented letters are enough.
  assert.equal(newPasswordProblem('éééééééé', 'éééééééé'), null);
});

test('a link path becomes a full address on the origin', () => {
  assert.equal(absoluteUrl('/signup?invite=abc', 'https://labs.example.com'), 'https://labs.example.com/signup?invite=abc');
  assert.equal(absoluteUrl('/reset?token=x-y', 'http://127.0.0.1:8080/'), 'http://127.0.0.1:8080/reset?token=x-y');
});

test('an invite is used up, expired or active', () => {
  const now = 1_700_000_000_000;
  assert.equal(inviteState({ expires_at_ms: now + 1000, uses: 1, used: 1 }, now), 'used up');
  assert.equal(inviteState({ expires_at_ms: now - 1, uses: 2, used: 1 }, now), 'expired');
  assert.equal(inviteState({ expires_at_ms: now, uses: 2, used: 1 }, now), 'expired');
  assert.equal(inviteState({ expires_at_ms: now + 60_000, uses: 2, used: 1 }, now), 'active');
});
