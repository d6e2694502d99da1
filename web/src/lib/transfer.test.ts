// Unit tests of the upload rules (`npm run test:unit`).
// @ts-ignore -- no Node types in this project
import nodeAssert from 'node:assert/strict';
// @ts-ignore -- no Node types in this project
import { test as nodeTest } from 'node:test';

import { attachmentName } from '../api';
import { uploadRefusal } from './transfer';

const assert = nodeAssert as { equal(actual: unknown, expected: unknown, message?: string): void };
const test = nodeTest as (name: string, fn: () => void | Promise<void>) => void;

test('names that are not a file name and files over 64 MiB are refused with a sentence', () => {
  assert.equal(uploadRefusal('notes.txt', 10), null);
  assert.equal(uploadRefusal('big.iso', 64 << 20), null, 'exactly 64 MiB is allowed');
  assert.equal(uploadRefusal('big.iso', 80 << 20), 'big.iso is larger than 64 MiB (80.0 MiB), the most that can be uploaded here.');
  assert.equal(uploadRefusal('..', 1), '“..” cannot be used as a file name.');
});

test("a download is saved under the server's file name", () => {
  assert.equal(attachmentName('attachment; filename="site.tar.gz"'), 'site.tar.gz');
  assert.equal(attachmentName('attachment; filename=notes.txt'), 'notes.txt');
  assert.equal(attachmentName('attachment'), null);
  assert.equal(attachmentName(null), null);
});
