// The signaling channel (static/signaling.js) under node, on a fake WebSocket and a fake
// clock: a dropped socket is reconnected after the backoff the session's policy gives, the
// backoff only starts over once a server said welcome, and a `bye` reconnects at once.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Signaling } from '../../static/signaling.js';
import { FakeClock } from './fake-clock.mjs';

class FakeSocket extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static made = [];

  constructor(url) {
    super();
    this.url = url;
    this.readyState = FakeSocket.CONNECTING;
    this.sent = [];
    this.closedWith = null;
    FakeSocket.made.push(this);
  }

  send(data) {
    this.sent.push(JSON.parse(data));
  }

  close(code) {
    this.readyState = FakeSocket.CLOSED;
    this.closedWith = code;
  }

  serverOpens() {
    this.readyState = FakeSocket.OPEN;
    this.dispatchEvent(new Event('open'));
  }

  serverSays(message) {
    this.dispatchEvent(Object.assign(new Event('message'), { data: JSON.stringify(message) }));
  }

  drops(code) {
    this.readyState = FakeSocket.CLOSED;
    this.dispatchEvent(Object.assign(new Event('close'), { code, reason: '' }));
  }
}

function setup() {
  globalThis.WebSocket = FakeSocket;
  FakeSocket.made = [];
  const clock = new FakeClock();
  const tracker = {
    listen(target, type, fn) {
      target.addEventListener(type, fn);
      return () => target.removeEventListener(type, fn);
    },
    timeout: (fn, ms) => clock.setTimeout(fn, ms),
    now: () => clock.now(),
    clear: (id) => {
      if (id != null) clock.clearTimeout(id);
      return null;
    },
  };
  const attempts = [];
  const signaling = new Signaling('ws://127.0.0.1:1/ws', tracker, (attempt) => {
    attempts.push(attempt);
    return 100 * (attempt + 1);
  });
  const events = [];
  for (const type of ['open', 'down', 'status', 'welcome', 'bye']) {
    signaling.on(type, (payload) => events.push([type, payload]));
  }
  const socket = () => FakeSocket.made.at(-1);
  return { signaling, clock, attempts, events, socket };
}

test('a dropped socket comes back after a growing backoff, reset by a welcome', () => {
  const { signaling, clock, attempts, events, socket } = setup();
  signaling.connect();
  socket().serverOpens();
  socket().serverSays({ type: 'welcome', online: 1 });
  assert.deepEqual(events.map(([type]) => type), ['status', 'status', 'open', 'welcome']);
  assert.equal(signaling.send({ type: 'join' }), true);

  socket().drops(1006);
  assert.deepEqual(events.at(-2), ['down', { code: 1006, reason: '' }]);
  assert.equal(signaling.status, 'reconnecting');
  assert.equal(signaling.send({ type: 'join' }), false, 'nothing is sent while down');
  assert.deepEqual(clock.delays, [100], 'the first retry waits what the policy says for attempt 0');
  clock.advance(100);
  assert.equal(FakeSocket.made.length, 2, 'a new socket');

  // A server that accepts and drops at once (no welcome) gets ever longer pauses.
  socket().drops(1006);
  clock.advance(200);
  socket().serverOpens();
  assert.deepEqual(events.at(-1), ['open', { reconnected: true }]);
  socket().drops(1011);
  assert.deepEqual(attempts, [0, 1, 2]);
  clock.advance(300);

  // Once a server said welcome, the next drop starts from the shortest pause again.
  socket().serverOpens();
  socket().serverSays({ type: 'welcome', online: 2 });
  socket().drops(1006);
  assert.deepEqual(attempts, [0, 1, 2, 0]);
  assert.equal(FakeSocket.made.length, 4);
});

test('bye (a server restart) drops the socket and reconnects; close() is for good', () => {
  const { signaling, clock, events, socket } = setup();
  signaling.connect();
  socket().serverOpens();
  socket().serverSays({ type: 'welcome', online: 1 });
  const first = socket();
  first.serverSays({ type: 'bye', reason: 'restart' });
  assert.equal(first.closedWith, 1000, 'we close the old socket ourselves');
  assert.deepEqual(events.find(([type]) => type === 'down'), ['down', { code: 1012, reason: 'restart' }]);
  assert.equal(events.some(([type]) => type === 'bye'), false, 'bye is handled, not passed on');
  clock.advance(100);
  assert.notEqual(socket(), first, 'back on a new socket');

  // The page goes away while a reconnect is pending: it never happens.
  socket().drops(1006);
  assert.equal(clock.pending, 1);
  signaling.close();
  assert.equal(signaling.status, 'closed');
  clock.advance(60_000);
  assert.equal(FakeSocket.made.length, 2, 'no reconnect after close()');
});

test('a socket that hears nothing for 5 s is given up (not closed) and replaced fast', () => {
  const { signaling, clock, events, socket } = setup();
  signaling.connect();
  socket().serverOpens();
  socket().serverSays({ type: 'welcome', online: 1 });
  const dead = socket();
  clock.advance(2_000);
  assert.deepEqual(dead.sent, [{ type: 'ping' }], 'a heartbeat every 2 s');
  dead.serverSays({ type: 'pong' });
  clock.advance(4_000);
  assert.equal(events.some(([type]) => type === 'down'), false, 'heard 4 s ago: still alive');
  clock.advance(2_000);
  assert.deepEqual(events.find(([type]) => type === 'down'), ['down', { code: 4000, reason: 'no answer from the server' }]);
  assert.equal(dead.closedWith, null, 'not closed: its FIN could end the call before the room is back');
  assert.ok(clock.delays[0] <= 1_000, `retried within a second: ${clock.delays}`);
  clock.advance(1_000);
  const attempt = socket();
  assert.notEqual(attempt, dead);
  clock.advance(1_500);
  assert.equal(attempt.closedWith !== null, true, 'an attempt that does not open in 1.5 s is dropped');
  clock.advance(1_000);
  socket().serverOpens();
  socket().serverSays({ type: 'welcome', online: 1 });
  signaling.releaseAbandoned();
  assert.equal(dead.closedWith, 1000, 'closed once the room is back');
});
