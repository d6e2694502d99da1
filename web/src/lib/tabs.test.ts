// Unit tests of the workbench's tab model (`npm run test:unit`): the tabs a lab starts
// with, opening and closing, where Run types, and what a stored state may bring back.
// @ts-ignore -- no Node types in this project
import nodeAssert from 'node:assert/strict';
// @ts-ignore -- no Node types in this project
import { test as nodeTest } from 'node:test';

import type { Tab } from '../api';
import { addTab, closeTab, fromLab, nextTerminalName, normalPath, restore, serviceOf, terminalOf, uniqueTitle, type TabsState } from './tabs';

const assert = nodeAssert as {
  equal(actual: unknown, expected: unknown, message?: string): void;
  deepEqual(actual: unknown, expected: unknown, message?: string): void;
};
const test = nodeTest as (name: string, fn: () => void | Promise<void>) => void;

const tab = (t: Partial<Tab> & Pick<Tab, 'kind' | 'title'>): Tab => ({ node: null, port: null, path: null, url: null, ...t });
const NODES = ['node01', 'node02'];

test('a lab without tabs gets a terminal per node, the first one active', () => {
  const s = fromLab([], NODES, 'main');
  assert.deepEqual(
    s.tabs.map((t) => [t.key, t.kind, t.node, t.terminal, t.title]),
    [
      ['t1', 'terminal', 'node01', 'main', 'node01'],
      ['t2', 'terminal', 'node02', 'main', 'node02'],
    ],
  );
  assert.equal(s.active, 't1');
});

test("declared tabs keep their order; a node's second terminal gets a name of its own; unknown nodes and bad URLs are left out", () => {
  const s = fromLab(
    [
      tab({ kind: 'terminal', node: 'node01', title: 'Shell' }),
      tab({ kind: 'service', node: 'node01', port: 80, path: '/x', title: 'Website' }),
      tab({ kind: 'terminal', node: 'node01', title: 'Shell' }),
      tab({ kind: 'editor', node: 'node09', path: '/etc', title: 'Gone' }),
      tab({ kind: 'website', url: 'javascript:alert(1)', title: 'Bad' }),
      tab({ kind: 'website', url: 'https://example.com/', title: 'Docs' }),
    ],
    NODES,
    'main',
  );
  assert.deepEqual(
    s.tabs.map((t) => [t.kind, t.terminal, t.title]),
    [
      ['terminal', 'main', 'Shell'],
      ['service', null, 'Website'],
      ['terminal', 'main-2', 'Shell (2)'],
      ['website', null, 'Docs'],
    ],
  );
});

test('closing the active tab activates its right neighbour, else its left one', () => {
  let s: TabsState = fromLab([], ['a', 'b', 'c'], 'main');
  s = { ...s, active: 't2' };
  s = closeTab(s, 't2');
  assert.equal(s.active, 't3');
  s = closeTab(s, 't3');
  assert.equal(s.active, 't1');
  s = closeTab(s, 't1');
  assert.deepEqual(s, { tabs: [], active: '' });
});

test('a new tab gets a fresh key and becomes active; closing another keeps the active one', () => {
  const s0 = fromLab([], NODES, 'main');
  const { state, key } = addTab(closeTab(s0, 't1'), {
    kind: 'service',
    node: 'node02',
    port: 8080,
    path: '/',
    url: null,
    title: 'Port 8080',
    terminal: null,
  });
  assert.equal(key, 't3');
  assert.equal(state.active, 't3');
  assert.equal(closeTab(state, 't2').active, 't3');
});

test('Run types into the first terminal of the node, else any of its terminals, else none', () => {
  let s = fromLab([], NODES, 'main');
  s = addTab(s, { kind: 'terminal', node: 'node01', port: null, path: null, url: null, title: 'x', terminal: nextTerminalName(s.tabs, 'node01', 'main') }).state;
  assert.equal(s.tabs[2].terminal, 'main-2');
  assert.equal(terminalOf(s, 'node01', 'main')?.key, 't1');
  s = closeTab(s, 't1');
  assert.equal(terminalOf(s, 'node01', 'main')?.key, 't3');
  assert.equal(nextTerminalName(s.tabs, 'node01', 'main'), 'main', 'a closed main terminal is opened again under its name');
  assert.equal(terminalOf(closeTab(s, 't2'), 'node02', 'main'), null);
});

test('a port link finds the service tab on its path, else any tab of that port', () => {
  const s = fromLab(
    [
      tab({ kind: 'service', node: 'node01', port: 80, path: null, title: 'Home' }),
      tab({ kind: 'service', node: 'node01', port: 80, path: '/admin', title: 'Admin' }),
    ],
    NODES,
    'main',
  );
  assert.equal(serviceOf(s, 'node01', 80, '/admin')?.title, 'Admin');
  assert.equal(serviceOf(s, 'node01', 80, '/')?.title, 'Home');
  assert.equal(serviceOf(s, 'node01', 80, '/other')?.title, 'Home');
  assert.equal(serviceOf(s, 'node02', 80), null);
  assert.equal(normalPath('x/y'), '/x/y');
});

test('a stored state comes back with only the tabs that make sense', () => {
  const stored = JSON.stringify({
    active: 't4',
    tabs: [
      { key: 't1', kind: 'terminal', node: 'node01', terminal: 'main', title: 'node01' },
      { key: 't2', kind: 'terminal', node: 'node01', terminal: 'main', title: 'dup' },
      { key: 't3', kind: 'terminal', node: 'node01', terminal: '../x', title: 'bad name' },
      { key: 't4', kind: 'service', node: 'node02', port: 3000, path: '/', title: 'App' },
      { key: 't5', kind: 'service', node: 'node02', port: 70000, title: 'bad port' },
      { key: 't6', kind: 'editor', node: 'gone', path: '/root', title: 'unknown node' },
      { key: 'x" onclick="', kind: 'editor', node: 'node01', title: 'bad key' },
      { key: 't7', kind: 'website', url: 'data:text/html,hi', title: 'bad url' },
      { key: 't8', kind: 'website', url: 'https://example.com', title: 'Docs' },
    ],
  });
  const s = restore(stored, NODES)!;
  assert.deepEqual(
    s.tabs.map((t) => t.key),
    ['t1', 't4', 't8'],
  );
  assert.equal(s.active, 't4');
  assert.equal(restore('{"tabs": 3}', NODES), null);
  assert.equal(restore('not json', NODES), null);
  assert.deepEqual(restore('{"tabs": [], "active": "t1"}', NODES), { tabs: [], active: '' }, 'all tabs closed stays closed');
  const gone = JSON.stringify({ tabs: [{ key: 't1', kind: 'terminal', node: 'old', terminal: 'main', title: 'old' }] });
  assert.equal(restore(gone, NODES), null, "tabs of nodes the lab no longer has: the lab's tabs instead");
});

test('titles are made unique', () => {
  const s = fromLab([], NODES, 'main');
  assert.equal(uniqueTitle(s.tabs, 'node01'), 'node01 (2)');
  assert.equal(uniqueTitle(s.tabs, 'Port 80'), 'Port 80');
});
