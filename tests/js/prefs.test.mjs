// What the chat page takes from its address and remembers (static/prefs.js), under node.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Prefs, parseInterests } from '../../static/prefs.js';

function memoryStorage() {
  const items = new Map();
  return {
    items,
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
  };
}

test('interests are trimmed, lower-cased and merged, within the protocol limits', () => {
  assert.deepEqual(parseInterests(' Music, chess ,music,,  Board   Games '), ['music', 'chess', 'board games']);
  assert.deepEqual(parseInterests('a,b,c,d,e,f,g,h,i,j'), ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], 'at most 8');
  const long = 'x'.repeat(33);
  assert.deepEqual(parseInterests(`${long}, ok`), ['ok'], 'over 32 characters is dropped');
  assert.deepEqual(parseInterests('é'.repeat(32)), ['é'.repeat(32)], 'characters, not bytes, are counted');
  assert.deepEqual(parseInterests(null), []);
});

test('interests from the landing form are joined with and remembered for next time', () => {
  const storage = memoryStorage();
  const prefs = new Prefs('?interests=Music%2C+Chess&start=1', () => storage);
  assert.deepEqual(prefs.interests(), ['music', 'chess']);
  assert.equal(storage.items.get('strangers.interests'), 'music, chess');
  assert.equal(prefs.startAtOnce(), true);
});

test('a plain /chat starts idle; ?start=1 starts at once', () => {
  const storage = memoryStorage();
  const plain = new Prefs('', () => storage);
  assert.deepEqual(plain.interests(), []);
  assert.equal(plain.startAtOnce(), false);
  assert.equal(storage.items.size, 0, 'nothing remembered');
  assert.equal(new Prefs('?start=1', () => storage).startAtOnce(), true);
});

test('Hide my IP is remembered, and a disabled storage is no error', () => {
  const storage = memoryStorage();
  const prefs = new Prefs('', () => storage);
  assert.equal(prefs.hideIp, false);
  prefs.hideIp = true;
  assert.equal(new Prefs('', () => storage).hideIp, true);
  const blocked = new Prefs('?interests=go', () => {
    throw new Error('SecurityError');
  });
  assert.equal(blocked.hideIp, false);
  blocked.hideIp = true;
  assert.deepEqual(blocked.interests(), ['go']);
});

test('the next call is made ahead unless the address says ahead=0', () => {
  const storage = memoryStorage();
  assert.equal(new Prefs('', () => storage).offerAhead, true);
  assert.equal(new Prefs('?start=1&ahead=1', () => storage).offerAhead, true);
  assert.equal(new Prefs('?start=1&ahead=0', () => storage).offerAhead, false);
});

test('"Blur until safe" is on until turned off, and "Auto-skip unsafe" off until turned on; both remembered', () => {
  const storage = memoryStorage();
  const prefs = new Prefs('', () => storage);
  assert.equal(prefs.blurUntilSafe, true);
  assert.equal(prefs.autoSkipUnsafe, false);
  prefs.blurUntilSafe = false;
  prefs.autoSkipUnsafe = true;
  const again = new Prefs('', () => storage);
  assert.equal(again.blurUntilSafe, false);
  assert.equal(again.autoSkipUnsafe, true);
  again.blurUntilSafe = true;
  assert.equal(new Prefs('', () => storage).blurUntilSafe, true);
  const blocked = new Prefs('', () => {
    throw new Error('SecurityError');
  });
  assert.equal(blocked.blurUntilSafe, true, 'no storage: the safe default');
});
