// The proof of work's arithmetic in the browser (static/pow.js) agrees with the server's
// (src/pow/mod.rs), under node.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { hashHex, seedWords, solve } from '../../static/pow.js';

const ONE = '00000000000000000000000000000001';
const SEVEN = '00000000000000000000000000000007';

test('the hash is SHA-256 of the seed and the nonce, as the server computes it', () => {
  // The vector of pow::tests::the_hash_is_sha256_of_seed_and_nonce.
  assert.equal(hashHex(ONE, 2), '941041afcec675aa551ed828e484e7c16d1d93757c816b17986763b4952e718c');
});

test('the solution is the first nonce with the leading zero bits', () => {
  const nonce = solve(SEVEN, 12);
  assert.equal(nonce, 4074, 'the nonce the server would find first (checked with sha256sum)');
  assert.match(hashHex(SEVEN, nonce), /^000/, '12 zero bits: three hex zeros');
  for (let n = 0; n < nonce; n += 1) assert.notEqual(hashHex(SEVEN, n).slice(0, 3), '000', `nonce ${n}`);
  assert.equal(solve(SEVEN, 0), 0, 'no bits: the first nonce');
  assert.equal(solve(SEVEN, 12, 4075, 10), null, 'none in a short range past it');
});

test('a malformed challenge is not searched', () => {
  assert.equal(seedWords('xyz'), null);
  assert.equal(solve('XYZ', 4), null);
  assert.equal(solve(SEVEN, 27), null, 'past the hardest the server sets');
  assert.equal(solve(SEVEN, -1), null);
});
