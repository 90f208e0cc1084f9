// The gate every join and Next passes in the browser (static/gate.js), under node: the 18+
// confirmation is remembered, every join and Next carries it and the solution of the
// latest challenge, one solved ahead of time goes out at once, and one still being solved
// is waited for; a text chat's join keeps its mode and language through it; what it says,
// it says in the page's language.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { useLanguage } from './catalog.mjs';
import { GATE_TEXT, Gate, SETTLE_MS, gateRefusal } from '../../static/gate.js';
import { Session } from '../../static/session.js';
import { FakeClock } from './fake-clock.mjs';

function memoryStorage() {
  const items = new Map();
  return {
    items,
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
  };
}

/** A solver whose solves the test finishes by hand, in any order. */
class HandSolver {
  asked = [];
  solve(seed, bits) {
    return new Promise((resolve) => this.asked.push({ seed, bits, done: (nonce) => resolve({ nonce, ms: 5 }) }));
  }
}

const SEED_A = 'a'.repeat(32);
const SEED_B = 'b'.repeat(32);
const tick = () => new Promise((resolve) => setImmediate(resolve));

function setup({ storage = memoryStorage(), open = true } = {}) {
  const sent = [];
  const solver = new HandSolver();
  const state = { open };
  const clock = new FakeClock();
  const gate = new Gate({
    storage: () => storage,
    send: (message) => {
      if (!state.open) return false;
      sent.push(message);
      return true;
    },
    isOpen: () => state.open,
    solver,
    clock,
  });
  return { gate, sent, solver, storage, state, clock };
}

test('the confirmation is remembered on the device, and can be taken back', () => {
  const storage = memoryStorage();
  const first = setup({ storage });
  assert.equal(first.gate.confirmed, false);
  first.gate.confirm(true);
  assert.equal(storage.items.get('strangers.adult'), '1');
  assert.equal(setup({ storage }).gate.confirmed, true, 'after a reload');
  first.gate.confirm(false);
  assert.equal(setup({ storage }).gate.confirmed, false);
  const broken = setup({ storage: null });
  broken.gate.confirm(true);
  assert.equal(broken.gate.confirmed, true, 'without storage, for this page');
});

test('a solution found ahead of time goes out with the join at once', async () => {
  const { gate, sent, solver } = setup();
  gate.confirm(true);
  gate.welcome({ type: 'welcome', challenge: { seed: SEED_A, bits: 18 } });
  assert.deepEqual(solver.asked.map((a) => [a.seed, a.bits]), [[SEED_A, 18]], 'solving starts with the welcome');
  solver.asked[0].done(1234);
  await tick();
  assert.equal(gate.send({ type: 'join', interests: ['chess'] }), true);
  assert.deepEqual(sent, [{ type: 'join', interests: ['chess'], adult: true, pow: 1234 }]);
  assert.deepEqual(gate.lastSolve, { bits: 18, ms: 5 });
  // Relays and the rest pass as they are.
  gate.send({ type: 'chat', room: 'r', text: 'hi' });
  assert.deepEqual(sent[1], { type: 'chat', room: 'r', text: 'hi' });
});

test('a Next before its solution waits for it, and the spent challenge is never reused', async () => {
  const { gate, sent, solver } = setup();
  gate.confirm(true);
  gate.welcome({ type: 'welcome', challenge: { seed: SEED_A, bits: 18 } });
  solver.asked[0].done(1);
  await tick();
  gate.send({ type: 'join', interests: [] });
  // The server's next challenge has not come: a Next now is held.
  assert.equal(gate.send({ type: 'next' }), true);
  assert.equal(sent.length, 1);
  assert.equal(gate.holding, true);
  gate.challenge({ type: 'challenge', seed: SEED_B, bits: 19 });
  assert.equal(sent.length, 1, 'still solving');
  solver.asked[1].done(2);
  await tick();
  assert.deepEqual(sent[1], { type: 'next', adult: true, pow: 2 });
  assert.equal(gate.holding, false);
});

test('the challenge after a join waits for its call to be set up, or for a Next that needs it', async () => {
  const { gate, sent, solver, clock } = setup();
  gate.confirm(true);
  gate.welcome({ type: 'welcome', challenge: { seed: SEED_A, bits: 18 } });
  solver.asked[0].done(1);
  await tick();
  gate.send({ type: 'join' });
  gate.challenge({ type: 'challenge', seed: SEED_B, bits: 18 });
  assert.equal(solver.asked.length, 1, 'no solve while the call is set up');
  assert.equal(gate.deferring, true);
  gate.settled();
  assert.deepEqual(solver.asked.map((a) => a.seed), [SEED_A, SEED_B], 'solved once it is');
  solver.asked[1].done(2);
  await tick();

  // The same, but Next is pressed before the call settles: its solve starts at once.
  gate.send({ type: 'next' });
  assert.equal(sent.at(-1).pow, 2);
  gate.challenge({ type: 'challenge', seed: SEED_A, bits: 18 });
  assert.equal(solver.asked.length, 2);
  gate.send({ type: 'next' });
  assert.equal(gate.holding, true);
  assert.equal(solver.asked.length, 3, 'a held Next starts the solve');
  solver.asked[2].done(3);
  await tick();
  assert.deepEqual(sent.at(-1), { type: 'next', adult: true, pow: 3 });

  // A call that never settles holds the solve back SETTLE_MS at most.
  gate.challenge({ type: 'challenge', seed: SEED_B, bits: 18 });
  clock.advance(SETTLE_MS - 1);
  assert.equal(solver.asked.length, 3);
  clock.advance(1);
  assert.equal(solver.asked.length, 4, 'solved after SETTLE_MS');
  assert.equal(gate.deferring, false);
});

test('a new socket solves its welcome at once, whatever the last call was doing', () => {
  const { gate, solver } = setup();
  gate.confirm(true);
  gate.welcome({ type: 'welcome', challenge: { seed: SEED_A, bits: 18 } });
  gate.send({ type: 'join' });
  gate.socketDown();
  gate.welcome({ type: 'welcome', challenge: { seed: SEED_B, bits: 18 } });
  assert.deepEqual(solver.asked.map((a) => a.seed), [SEED_A, SEED_B]);
});

test('a newer challenge replaces one being solved; a late answer to the old one is ignored', async () => {
  const { gate, sent, solver } = setup();
  gate.confirm(true);
  gate.welcome({ type: 'welcome', challenge: { seed: SEED_A, bits: 18 } });
  gate.send({ type: 'join' });
  gate.challenge({ type: 'challenge', seed: SEED_B, bits: 18 });
  solver.asked[0].done(7);
  await tick();
  assert.equal(sent.length, 0, "the old challenge's answer is of no use");
  solver.asked[1].done(8);
  await tick();
  assert.equal(sent[0].pow, 8);
});

test('leave cancels a held join; a lost socket loses its challenge and held join', async () => {
  const { gate, sent, solver, state } = setup();
  gate.confirm(true);
  gate.welcome({ type: 'welcome', challenge: { seed: SEED_A, bits: 18 } });
  gate.send({ type: 'join' });
  gate.send({ type: 'leave' });
  solver.asked[0].done(3);
  await tick();
  assert.deepEqual(sent, [{ type: 'leave' }], 'the join never went');

  gate.socketDown();
  state.open = false;
  assert.equal(gate.send({ type: 'join' }), false, 'no socket: the session joins on the next');
  state.open = true;
  // A new socket: the join waits for its welcome's challenge (the old solution is for
  // a challenge the server has forgotten).
  gate.send({ type: 'join' });
  assert.equal(sent.length, 1);
  gate.welcome({ type: 'welcome', challenge: { seed: SEED_B, bits: 18 } });
  solver.asked[1].done(4);
  await tick();
  assert.deepEqual(sent[1], { type: 'join', adult: true, pow: 4 });
});

test('with the proof of work off, a join carries the confirmation only', () => {
  const { gate, sent } = setup();
  gate.confirm(true);
  gate.send({ type: 'join' });
  assert.equal(sent.length, 0, 'not before the welcome says');
  gate.welcome({ type: 'welcome', online: 1 });
  assert.deepEqual(sent, [{ type: 'join', adult: true }]);
});

test('a join refused for its proof is sent again with the next solution, a few times at most', async () => {
  const { gate, sent, solver } = setup();
  gate.confirm(true);
  gate.welcome({ type: 'welcome', challenge: { seed: SEED_A, bits: 18 } });
  solver.asked[0].done(1);
  await tick();
  gate.send({ type: 'join', interests: ['x'] });
  for (let i = 0; i < 5; i += 1) {
    gate.challenge({ type: 'challenge', seed: `${i}`.repeat(32), bits: 18 });
    gate.refused({ type: 'error', code: 'pow_invalid' });
    solver.asked.at(-1).done(10 + i);
    await tick();
  }
  assert.deepEqual(
    sent.map((m) => m.pow),
    [1, 10, 11, 12],
    'the first and three retries',
  );
  assert.deepEqual(sent[1].interests, ['x']);
});

test('the session does not start before the confirmation, and Start follows it', () => {
  const clock = new FakeClock();
  const { gate } = setup();
  const commands = [];
  let view = null;
  const session = new Session({
    clock,
    send: () => true,
    localMedia: () => ({ video: true, audio: true }),
    command: (c) => commands.push(c),
    render: (v) => {
      view = v;
    },
    confirmed: () => gate.confirmed,
  });
  session.start();
  assert.equal(session.state, 'idle');
  assert.deepEqual(commands, [], 'no camera asked, no join');
  gate.confirm(true);
  session.confirmationChanged();
  assert.equal(view.controls.start, true);
  session.start();
  assert.equal(session.state, 'waiting');
  assert.equal(commands[0].type, 'askMedia');
});

test("a text chat's join carries its mode and language with the gate's fields", async () => {
  const { gate, sent, solver } = setup();
  gate.confirm(true);
  gate.welcome({ type: 'welcome', challenge: { seed: SEED_A, bits: 18 } });
  gate.send({ type: 'join', interests: ['chess'], mode: 'text', lang: 'de' });
  // Next pressed while the join waits for its solution: the join still goes, as it was.
  gate.send({ type: 'next' });
  solver.asked[0].done(9);
  await tick();
  assert.deepEqual(sent, [{ type: 'join', interests: ['chess'], mode: 'text', lang: 'de', adult: true, pow: 9 }]);
  // A join after a held Next keeps the Next, in the join's mode.
  gate.send({ type: 'next' });
  gate.send({ type: 'join', interests: [], mode: 'text', lang: 'de' });
  gate.challenge({ type: 'challenge', seed: SEED_B, bits: 18 });
  solver.asked[1].done(10);
  await tick();
  assert.deepEqual(sent[1], { type: 'next', interests: [], mode: 'text', adult: true, pow: 10 });
});

test("a refusal the gate retries is its own; one it gives up on is said in the page's language", async () => {
  const { gate, solver } = setup();
  gate.confirm(true);
  gate.welcome({ type: 'welcome', challenge: { seed: SEED_A, bits: 18 } });
  solver.asked[0].done(1);
  await tick();
  gate.send({ type: 'join' });
  const retried = [];
  for (let i = 0; i < 4; i += 1) {
    retried.push(gate.refused({ type: 'error', code: 'pow_invalid' }));
    gate.challenge({ type: 'challenge', seed: `${i}`.repeat(32), bits: 18 });
    solver.asked.at(-1).done(i);
    await tick();
  }
  assert.deepEqual(retried, [true, true, true, false]);
  assert.equal(gate.refused({ type: 'error', code: 'rate_limited' }), false);
  assert.equal(gateRefusal('rate_limited'), null, 'not the gate\'s');
  assert.equal(gateRefusal('pow_invalid'), GATE_TEXT.powRefused);
  assert.match(gateRefusal('adult_required'), /18 or older/);
  useLanguage('de');
  try {
    assert.match(GATE_TEXT.confirmFirst, /mindestens 18 Jahre/);
    assert.match(gateRefusal('adult_required'), /Bestätige/);
    assert.match(gateRefusal('pow_required'), /Browsers/);
  } finally {
    useLanguage('en');
  }
});
