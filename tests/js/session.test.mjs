// The session logic (static/session.js) under node: what the user sees and what goes to the
// server for Start, Next, Stop, a stranger leaving, socket drops and server restarts,
// reports and bans. Time is a fake clock moved on by hand.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import './catalog.mjs';

import { Session } from '../../static/session.js';
import { offersTurn } from '../../static/call-state.js';
import { reconnectDelay } from '../../static/signaling.js';
import { FakeClock } from './fake-clock.mjs';

const TURN = [{ urls: ['stun:127.0.0.1:3478'] }, { urls: ['turn:127.0.0.1:3478'], username: 'u', credential: 'c' }];

/** A session with a fake page around it: what it sent, the commands it gave, what it shows. */
function setup({ interests = [], hideIp = false, autoNext = true, media = { video: true, audio: true }, ahead = false, mode = 'video' } = {}) {
  const clock = new FakeClock();
  const page = { connected: true, sent: [], commands: [], shown: null, media };
  const session = new Session({
    clock,
    send: (message) => {
      if (!page.connected) return false;
      page.sent.push(message);
      return true;
    },
    localMedia: () => page.media,
    command: (command) => page.commands.push(command),
    render: (view) => {
      page.shown = view;
    },
    interests,
    hideIp,
    autoNext,
    ahead,
    mode,
  });
  /** The messages sent since the last call, and forgets them. */
  page.takeSent = () => page.sent.splice(0);
  /** The commands given since the last call, and forgets them. */
  page.takeCommands = () => page.commands.splice(0);
  page.lines = () => page.commands.filter((c) => c.type === 'line').map((c) => c.text);
  return { session, clock, page };
}

/** The socket is up and the server said welcome. */
function online(session, { iceServers = [], reconnected = false } = {}) {
  session.socketStatus('connected');
  session.socketOpen({ reconnected });
  session.receive({ type: 'welcome', online: 3, iceServers });
}

/** Start, and the camera question answered with `problem` ("" = camera and mic work). */
function start(session, page, problem = '') {
  session.start();
  const ask = page.commands.findLast((c) => c.type === 'askMedia');
  assert.ok(ask, 'Start asks for the camera');
  session.mediaReady(ask.generation, problem);
}

/** What the server's `matched` gives this member to resume its room after a restart. */
const PROOF = 'ab'.repeat(32);

/** Online, Start, matched in `room`, peer connection up. */
function inCall(options = {}, room = 'room-1') {
  const t = setup(options);
  online(t.session, options);
  start(t.session, t.page);
  t.session.receive({ type: 'matched', room, role: 'offerer', common: ['chess'], proof: PROOF });
  t.session.peerState('connected');
  t.session.remoteVideo(true);
  t.page.takeSent();
  t.page.takeCommands();
  return t;
}

const types = (messages) => messages.map((m) => m.type);

describe('Start, matching and the call', () => {
  test('a fresh page is idle: only Start can be pressed', () => {
    const { session } = setup();
    const view = session.view();
    assert.equal(view.state, 'idle');
    assert.equal(view.status, 'Press Start to talk to a random stranger.');
    assert.deepEqual(view.controls, { start: true, next: false, stop: false, chat: false });
    assert.equal(view.connection.label, 'Connecting…');
  });

  test('Start asks for the camera, then joins the queue with our interests', () => {
    const { session, page } = setup({ interests: ['music', 'chess'] });
    online(session);
    session.start();
    assert.equal(page.shown.state, 'waiting');
    assert.equal(page.shown.status, 'Starting your camera…');
    assert.equal(page.shown.notice.main, 'Starting your camera…');
    assert.deepEqual(page.sent, [], 'nothing is sent before the camera is answered');
    const ask = page.commands.find((c) => c.type === 'askMedia');
    session.mediaReady(ask.generation, '');
    assert.deepEqual(page.sent, [{ type: 'join', interests: ['music', 'chess'] }]);
    assert.equal(page.shown.status, 'Looking for a stranger…');
    assert.equal(page.shown.notice.main, 'Looking for a stranger…');
    assert.deepEqual(page.shown.controls, { start: false, next: true, stop: true, chat: false });
  });

  test('Start before the socket is open joins as soon as it opens', () => {
    const { session, page } = setup();
    page.connected = false;
    start(session, page);
    assert.equal(page.shown.status, 'Connecting to the server…');
    assert.deepEqual(page.sent, []);
    page.connected = true;
    online(session);
    assert.deepEqual(types(page.sent), ['join']);
    assert.equal(page.shown.status, 'Looking for a stranger…');
  });

  test('matched opens a call; the connected peer connection shows the stranger', () => {
    const { session, page } = setup();
    online(session);
    start(session, page);
    page.takeCommands();
    session.receive({ type: 'matched', room: 'r1', role: 'answerer', common: ['chess'] });
    assert.deepEqual(page.takeCommands(), [
      { type: 'clearLog' },
      { type: 'beginCall', room: 'r1', role: 'answerer', common: ['chess'], sameLang: false, iceServers: [], relayOnly: false, offer: null, offered: false },
      { type: 'line', text: "You're now talking to a random stranger. Say hi!" },
    ]);
    assert.equal(session.room, 'r1');
    assert.equal(session.role, 'answerer');
    assert.equal(page.shown.state, 'connecting');
    assert.equal(page.shown.status, 'Stranger found, connecting…');
    assert.equal(page.shown.controls.chat, true, 'chat and Report open with the call');

    session.peerState('connected');
    assert.equal(page.shown.state, 'connected');
    assert.equal(page.shown.status, 'Connected to a stranger. Say hi!');
    assert.equal(page.shown.notice.main, "Stranger's camera is off", 'no picture yet');
    session.remoteVideo(true);
    assert.deepEqual(page.shown.notice, { main: '', info: '', sub: '' }, 'the picture shows, nothing over it');
  });

  test('an interrupted or failed connection is reported, and recovers', () => {
    const { session, page } = inCall();
    session.peerState('disconnected');
    assert.equal(page.shown.status, 'Connection interrupted, trying to recover…');
    assert.equal(page.shown.state, 'connecting');
    // The call was up: it is being recovered, so it has not failed.
    session.peerState('failed');
    assert.equal(page.shown.status, 'Connection interrupted, trying to recover…');
    session.peerState('connected');
    assert.equal(page.shown.status, 'Connected to a stranger. Say hi!');
  });
});

describe('the hint while connecting', () => {
  test('after 15 s without a connection the status suggests Next', () => {
    const { session, page, clock } = setup();
    online(session);
    start(session, page);
    session.receive({ type: 'matched', room: 'r1', role: 'offerer' });
    clock.advance(14_999);
    assert.equal(page.shown.status, 'Stranger found, connecting…');
    clock.advance(1);
    assert.equal(page.shown.status, 'Still connecting… Press Next to try someone else.');
  });

  test('through the relay (Hide my IP) it also suggests turning that off', () => {
    const { session, page, clock } = setup({ hideIp: true });
    online(session, { iceServers: TURN });
    start(session, page);
    session.receive({ type: 'matched', room: 'r1', role: 'offerer' });
    const begin = page.commands.find((c) => c.type === 'beginCall');
    assert.equal(begin.relayOnly, true, 'the call is relay-only');
    assert.deepEqual(begin.iceServers, TURN);
    clock.advance(15_000);
    assert.match(page.shown.status, /^Still connecting through the relay… .*turn off Hide my IP\.$/);
  });

  test("each call uses the fresh relay credentials its matched brings, not welcome's", () => {
    const { session, page } = setup({ hideIp: true });
    online(session, { iceServers: TURN });
    start(session, page);
    const fresh = [{ urls: ['turn:relay.test:3478'], username: 'later', credential: 'new' }];
    session.receive({ type: 'matched', room: 'r1', role: 'offerer', iceServers: fresh });
    const begin = page.commands.find((c) => c.type === 'beginCall');
    assert.deepEqual(begin.iceServers, fresh);
    assert.equal(begin.relayOnly, true, 'still a relay to hide behind');
  });

  test('a call that connected in time gets no hint', () => {
    const { session, page, clock } = setup();
    online(session);
    start(session, page);
    session.receive({ type: 'matched', room: 'r1', role: 'offerer' });
    clock.advance(5_000);
    session.peerState('connected');
    clock.advance(60_000);
    assert.equal(page.shown.status, 'Connected to a stranger. Say hi!');
  });
});

describe('Next and Stop', () => {
  test('Next in a call ends it and looks for someone new', () => {
    const { session, page } = inCall();
    session.next();
    assert.deepEqual(page.takeSent(), [{ type: 'next' }]);
    const commands = page.takeCommands();
    assert.deepEqual(types(commands), ['clearLog', 'prepare', 'endCall']);
    assert.equal(commands[2].next, true, 'another call is coming: the old one may close later');
    session.receive({ type: 'waiting' });
    assert.deepEqual(types(page.takeCommands()), ['looking'], 'the server has us waiting');
    assert.equal(page.shown.state, 'waiting');
    assert.equal(page.shown.status, 'Looking for a stranger…');
    assert.equal(session.room, null);
    assert.equal(page.shown.controls.chat, false);
  });

  test('Next while waiting joins again with the interests', () => {
    const { session, page } = setup({ interests: ['go'] });
    online(session);
    start(session, page);
    page.takeSent();
    session.next();
    assert.deepEqual(page.takeSent(), [{ type: 'join', interests: ['go'] }]);
  });

  test('Stop in a call leaves, and the page is idle with Start back', () => {
    const { session, page } = inCall();
    session.stop();
    assert.deepEqual(page.takeSent(), [{ type: 'leave' }]);
    assert.deepEqual(types(page.takeCommands()), ['endCall', 'idle']);
    assert.equal(page.shown.state, 'idle');
    assert.equal(page.shown.status, 'You left. Press Start to talk to someone new.');
    assert.deepEqual(page.shown.controls, { start: true, next: false, stop: false, chat: false });
  });

  test('a matched or waiting that crossed our Stop on the wire is ignored', () => {
    const { session, page } = setup();
    online(session);
    start(session, page);
    session.stop();
    page.takeCommands();
    session.receive({ type: 'waiting' });
    session.receive({ type: 'matched', room: 'late', role: 'offerer' });
    assert.deepEqual(page.takeCommands(), [], 'no call is opened');
    assert.equal(page.shown.state, 'idle');
    assert.equal(session.room, null);
  });

  test('a camera answer that comes after Stop does not join', () => {
    const { session, page } = setup();
    online(session);
    session.start();
    const first = page.commands.find((c) => c.type === 'askMedia');
    session.stop();
    page.takeSent();
    session.mediaReady(first.generation, '');
    assert.deepEqual(page.takeSent(), []);
    assert.equal(page.shown.state, 'idle');
    // Start again: only the answer to this Start joins, once.
    session.start();
    const second = page.commands.findLast((c) => c.type === 'askMedia');
    session.mediaReady(first.generation, '');
    assert.deepEqual(page.takeSent(), []);
    session.mediaReady(second.generation, '');
    assert.deepEqual(types(page.takeSent()), ['join']);
  });

  test('malformed matched messages are ignored', () => {
    const { session, page } = setup();
    online(session);
    start(session, page);
    page.takeCommands();
    session.receive({ type: 'matched', room: 'r1', role: 'boss' });
    session.receive({ type: 'matched', room: 7, role: 'offerer' });
    assert.deepEqual(page.takeCommands(), []);
    assert.equal(page.shown.state, 'waiting');
  });
});

describe('the stranger leaves', () => {
  test('with Auto-next on, we look again a second later', () => {
    const { session, page, clock } = inCall();
    session.receive({ type: 'left', room: 'room-1', reason: 'skipped' });
    assert.deepEqual(page.takeCommands(), [{ type: 'endCall' }, { type: 'line', text: 'Stranger has disconnected.' }]);
    assert.equal(page.shown.state, 'idle');
    assert.equal(page.shown.status, 'Stranger has disconnected.');
    assert.equal(page.shown.notice.main, 'Stranger has disconnected.');
    assert.equal(page.shown.controls.next, true, 'Next skips the pause');
    clock.advance(999);
    assert.deepEqual(page.sent, []);
    clock.advance(1);
    assert.deepEqual(types(page.takeSent()), ['join']);
    assert.equal(page.shown.state, 'waiting');
    assert.equal(page.shown.status, 'Looking for a stranger…');
  });

  test('Next during the pause joins at once, and only once', () => {
    const { session, page, clock } = inCall();
    session.receive({ type: 'left', room: 'room-1', reason: 'left' });
    session.next();
    assert.deepEqual(types(page.takeSent()), ['join']);
    clock.advance(5_000);
    assert.deepEqual(page.takeSent(), [], 'the auto-next timer does not join again');
  });

  test('with Auto-next off, the page goes idle and stays there', () => {
    const { session, page, clock } = inCall({ autoNext: false });
    session.receive({ type: 'left', room: 'room-1', reason: 'left' });
    clock.advance(10_000);
    assert.deepEqual(page.takeSent(), []);
    assert.equal(page.shown.state, 'idle');
    assert.equal(page.shown.status, 'Stranger has disconnected.');
    assert.equal(page.shown.notice.main, 'Press Start to talk to a random stranger.');
    assert.equal(page.shown.controls.start, true);
  });

  test('Auto-next turned off during a call counts', () => {
    const { session, page, clock } = inCall();
    session.setAutoNext(false);
    session.receive({ type: 'left', room: 'room-1', reason: 'left' });
    clock.advance(10_000);
    assert.deepEqual(page.takeSent(), []);
    assert.equal(page.shown.controls.start, true);
  });

  test('left for a room we already left changes nothing', () => {
    const { session, page } = inCall({}, 'room-2');
    session.receive({ type: 'left', room: 'room-1', reason: 'skipped' });
    assert.deepEqual(page.takeCommands(), []);
    assert.equal(session.room, 'room-2');
    assert.equal(page.shown.state, 'connected');
  });
});

describe('socket drops and server restarts', () => {
  test('a drop while waiting says so, and the reconnect joins the queue again', () => {
    const { session, page, clock } = setup();
    online(session);
    start(session, page);
    page.takeSent();
    page.connected = false;
    session.socketDown({ code: 1006 });
    session.socketStatus('reconnecting');
    assert.equal(page.shown.state, 'waiting');
    assert.equal(page.shown.status, 'Lost the connection to the server. Reconnecting…');
    assert.equal(page.shown.connection.label, 'Reconnecting…');
    page.connected = true;
    online(session, { reconnected: true });
    assert.deepEqual(types(page.takeSent()), ['join']);
    assert.equal(page.shown.status, 'Connected', 'a short "Connected" first');
    assert.equal(page.shown.connection.label, 'Connected');
    clock.advance(2_000);
    assert.equal(page.shown.status, 'Looking for a stranger…');
  });

  test('a drop while idle rejoins nothing', () => {
    const { session, page } = setup();
    online(session);
    page.connected = false;
    session.socketDown({ code: 1006 });
    assert.equal(page.shown.status, 'Reconnecting…');
    page.connected = true;
    online(session, { reconnected: true });
    assert.deepEqual(page.sent, []);
    assert.equal(page.shown.state, 'idle');
  });

  test('a drop before the call connected ends it; the reconnect looks again', () => {
    const t = setup();
    online(t.session);
    start(t.session, t.page);
    t.session.receive({ type: 'matched', room: 'r1', role: 'offerer' });
    t.page.takeSent();
    t.page.takeCommands();
    t.page.connected = false;
    t.session.socketDown({ code: 1006 });
    assert.deepEqual(t.page.takeCommands(), [{ type: 'endCall' }, { type: 'line', text: 'Lost the connection to the server.' }]);
    assert.equal(t.page.shown.state, 'waiting');
    t.page.connected = true;
    online(t.session, { reconnected: true });
    assert.deepEqual(types(t.page.takeSent()), ['join']);
  });

  test('a restart (bye, 1012) in a connected call keeps the call and resumes its room', () => {
    const { session, page } = inCall();
    page.connected = false;
    session.socketDown({ code: 1012, reason: 'restart' });
    assert.deepEqual(page.takeCommands(), [], 'the call goes on');
    assert.equal(page.shown.status, 'Reconnecting to the server… your call goes on.');
    assert.equal(page.shown.state, 'connected');
    page.connected = true;
    online(session, { reconnected: true });
    assert.deepEqual(
      page.takeSent(),
      [{ type: 'resume', room: 'room-1', proof: PROOF }],
      'asks for the room back with its proof of membership, no join',
    );
    session.receive({ type: 'resumed', room: 'room-1' });
    assert.equal(page.shown.status, 'Connected to a stranger. Say hi!');
    assert.equal(session.room, 'room-1');
    // The call is told signaling is back; a restart changed no address, so no ICE restart.
    assert.deepEqual(page.takeCommands(), [{ type: 'signalingRestored', networkChanged: false }]);
  });

  test('a call that failed while the server was away is still asked back', () => {
    const { session, page } = inCall();
    page.connected = false;
    session.socketDown({ code: 1012 });
    session.peerState('failed');
    page.connected = true;
    online(session, { reconnected: true });
    // It was up, and the stranger is there until the server says otherwise: recover it.
    assert.deepEqual(types(page.takeSent()), ['resume']);
    assert.deepEqual(types(page.takeCommands()), []);
    assert.equal(page.shown.state, 'connecting');
    assert.equal(page.shown.status, 'Connection interrupted, trying to recover…');
  });

  test('unresumed: the stranger never came back, so the call ends and Auto-next looks again', () => {
    const { session, page, clock } = inCall();
    page.connected = false;
    session.socketDown({ code: 1012 });
    page.connected = true;
    online(session, { reconnected: true });
    page.takeSent();
    // The server gives up on the stranger after 10 s.
    session.receive({ type: 'left', room: 'room-1', reason: 'disconnected' });
    assert.deepEqual(page.takeCommands(), [{ type: 'endCall' }, { type: 'line', text: 'Stranger has disconnected.' }]);
    clock.advance(1_000);
    assert.deepEqual(types(page.takeSent()), ['join']);
  });

  test('a resumed for another room is ignored', () => {
    const { session, page } = inCall();
    page.connected = false;
    session.socketDown({ code: 1012 });
    page.connected = true;
    online(session, { reconnected: true });
    session.receive({ type: 'resumed', room: 'other' });
    assert.equal(page.shown.status, 'Reconnecting to the server… your call goes on.');
    session.receive({ type: 'resumed', room: 'room-1' });
    assert.equal(page.shown.status, 'Connected to a stranger. Say hi!');
  });
});

describe('the reconnect backoff', () => {
  test('grows from 300 ms by doubling, up to 10 s, with half of it random', () => {
    const low = () => 0;
    const high = () => 0.999999;
    assert.equal(reconnectDelay(0, low), 150);
    assert.ok(Math.abs(reconnectDelay(0, high) - 300) < 0.01);
    assert.equal(reconnectDelay(1, low), 300);
    assert.equal(reconnectDelay(2, low), 600);
    assert.equal(reconnectDelay(5, low), 4_800);
    assert.equal(reconnectDelay(6, low), 5_000, 'capped at 10 s');
    assert.equal(reconnectDelay(16, low), 5_000);
    assert.ok(reconnectDelay(16, high) <= 10_000);
  });
});

describe('reports', () => {
  test('a report ends the call; Auto-next looks again', () => {
    const { session, page, clock } = inCall();
    session.openReport();
    assert.equal(page.shown.reporting, true);
    session.report('spam');
    assert.deepEqual(page.takeSent(), [{ type: 'report', room: 'room-1', reason: 'spam' }, { type: 'leave' }]);
    assert.deepEqual(page.takeCommands(), [{ type: 'endCall' }, { type: 'line', text: 'Thanks — the stranger was reported.' }]);
    assert.equal(page.shown.reporting, false, 'the dialog closes');
    assert.equal(page.shown.status, 'Thanks — the stranger was reported.');
    assert.equal(page.shown.notice.main, 'Thanks — the stranger was reported.');
    clock.advance(1_000);
    assert.deepEqual(types(page.takeSent()), ['join']);
  });

  test('without Auto-next the reporter is left idle', () => {
    const { session, page } = inCall({ autoNext: false });
    session.openReport();
    session.report('nudity');
    assert.equal(page.shown.state, 'idle');
    assert.equal(page.shown.status, 'You reported the stranger. Press Start to talk to someone new.');
  });

  test('a report that cannot be sent says so and the call goes on', () => {
    const { session, page } = inCall();
    session.openReport();
    page.connected = false;
    session.report('harassment');
    assert.equal(page.shown.status, 'Not connected to the server; the report was not sent.');
    assert.equal(page.shown.reporting, false);
    assert.equal(session.room, 'room-1');
  });

  test('an unknown reason sends nothing and keeps the dialog open', () => {
    const { session, page } = inCall();
    session.openReport();
    session.report('boring');
    assert.deepEqual(page.sent, []);
    assert.equal(page.shown.reporting, true);
  });

  test('the stranger leaving while we report is said in the log', () => {
    const { session, page } = inCall();
    session.openReport();
    session.receive({ type: 'left', room: 'room-1', reason: 'skipped' });
    assert.deepEqual(page.lines(), ['Stranger has disconnected.', 'The stranger left before your report was sent.']);
    assert.equal(page.shown.reporting, false);
  });

  test('Report opens only in a call', () => {
    const { session, page } = setup();
    session.openReport();
    assert.equal(page.shown.reporting, false);
  });
});

describe('bans', () => {
  test('banned in a call: the call ends, Start stays off until the ban is over', () => {
    const { session, page, clock } = inCall();
    session.receive({ type: 'error', code: 'banned', message: 'reported', retry_after: 150 });
    assert.deepEqual(page.takeSent(), [{ type: 'leave' }]);
    assert.deepEqual(types(page.takeCommands()), ['endCall', 'idle']);
    assert.equal(page.shown.state, 'idle');
    assert.equal(page.shown.controls.start, false);
    const banned = "You can't be matched right now: other users reported you.";
    assert.equal(page.shown.status, `${banned} Try again in about 3 minutes.`);
    assert.equal(page.shown.notice.main, page.shown.status);

    session.start();
    assert.deepEqual(page.commands, [], 'Start does nothing while banned');
    clock.advance(60_000);
    assert.equal(page.shown.status, `${banned} Try again in about 2 minutes.`);
    clock.advance(60_000);
    assert.equal(page.shown.status, `${banned} Try again in about 1 minute.`);
    clock.advance(30_000);
    assert.equal(page.shown.status, 'You can talk to strangers again. Press Start.');
    assert.equal(page.shown.controls.start, true);
    assert.equal(clock.pending, 0, 'no ban timer left running');
    assert.deepEqual(page.sent, [], 'nothing joined by itself');
  });

  test('no automatic way back in while banned: neither Auto-next nor a reconnect', () => {
    const { session, page, clock } = setup();
    online(session);
    start(session, page);
    page.takeSent();
    session.receive({ type: 'error', code: 'banned', retry_after: 600 });
    assert.deepEqual(page.takeSent(), [], 'not in a room: nothing to leave');
    page.connected = false;
    session.socketDown({ code: 1006 });
    page.connected = true;
    online(session, { reconnected: true });
    clock.advance(2_000);
    assert.deepEqual(page.sent, []);
    assert.match(page.shown.status, /^You can't be matched right now.*10 minutes\.$/);
  });

  test('a ban without retry_after says so in the page language and lifts after a minute', () => {
    const { session, page, clock } = setup();
    online(session);
    start(session, page);
    session.receive({ type: 'error', code: 'banned', message: '  Reported too often.  ' });
    assert.equal(page.shown.status, "You can't be matched right now: other users reported you.");
    assert.ok(
      page.commands.some((c) => c.type === 'log' && c.text.includes('Reported too often.')),
      "the server's own words go to the console",
    );
    clock.advance(59_999);
    assert.equal(page.shown.controls.start, false);
    clock.advance(1);
    assert.equal(page.shown.controls.start, true);
    assert.equal(page.shown.status, 'You can talk to strangers again. Press Start.');
  });
});

describe('notices', () => {
  test('"going too fast" shows for 3 s and not more often than every 3 s', () => {
    const { session, page, clock } = setup();
    online(session);
    start(session, page);
    const rateLimited = { type: 'error', code: 'rate_limited', message: 'slow down' };
    session.receive(rateLimited);
    assert.equal(page.shown.status, "You're going too fast — slow down a little.");
    clock.advance(3_000);
    assert.equal(page.shown.status, 'Looking for a stranger…');
    session.receive(rateLimited);
    assert.equal(page.shown.status, "You're going too fast — slow down a little.", 'a new run after 3 s shows');
    clock.advance(1_000);
    session.receive(rateLimited);
    clock.advance(2_000);
    assert.equal(page.shown.status, 'Looking for a stranger…', 'the one 1 s later was not shown again');
  });

  test('another refusal shows the server reason', () => {
    const { session, page } = setup();
    online(session);
    session.receive({ type: 'error', code: 'bad_message', message: 'unknown type' });
    assert.equal(page.shown.status, 'Server: unknown type');
    assert.deepEqual(types(page.commands.filter((c) => c.type === 'log')), ['log']);
  });

  test('without a camera the user is told why, and the stranger is told it is off', () => {
    const problem = 'No camera/microphone: permission denied. You can still text chat.';
    const t = setup({ media: { video: false, audio: false } });
    online(t.session);
    start(t.session, t.page, problem);
    assert.equal(t.page.shown.status, problem, 'shown over "Looking…" for a while');
    assert.equal(t.page.shown.notice.sub, problem);
    t.clock.advance(6_000);
    assert.equal(t.page.shown.status, 'Looking for a stranger…');
    t.page.takeSent();
    t.session.receive({ type: 'matched', room: 'r1', role: 'answerer' });
    assert.deepEqual(t.page.takeSent(), [{ type: 'media', room: 'r1', video: false, audio: false }]);
    assert.equal(t.page.shown.selfUnseen, true, "for the whole call: the stranger can't see or hear us");
  });

  test('camera and microphone on: nothing is said about them when a call begins', () => {
    const { session, page } = setup();
    online(session);
    start(session, page);
    page.takeSent();
    session.receive({ type: 'matched', room: 'r1', role: 'answerer' });
    assert.deepEqual(page.sent, []);
    assert.equal(page.shown.selfUnseen, false);
  });

  test('turning the camera off in a call tells the stranger', () => {
    const { session, page } = inCall();
    page.media = { video: false, audio: true };
    session.localMediaChanged();
    assert.deepEqual(page.takeSent(), [{ type: 'media', room: 'room-1', video: false, audio: true }]);
  });

  test("the stranger's camera and microphone state shows on the video", () => {
    const { session, page } = inCall();
    session.receive({ type: 'media', room: 'room-1', video: false, audio: false });
    assert.equal(page.shown.notice.main, 'Stranger turned their camera off');
    assert.equal(page.shown.remoteMuted, true);
    session.peerState('disconnected');
    assert.equal(page.shown.notice.main, 'Connecting…');
    assert.equal(page.shown.notice.info, 'Stranger turned their camera off');
    session.receive({ type: 'media', room: 'other', video: true, audio: true });
    assert.equal(page.shown.remoteMuted, true, 'another room says nothing about this call');
  });

  test('a browser without WebRTC is told the call is text only', () => {
    const { session, page } = setup();
    online(session);
    start(session, page);
    session.receive({ type: 'matched', room: 'r1', role: 'answerer' });
    session.videoUnsupported();
    assert.equal(page.shown.status, 'Video calls are not supported in this browser. You can still text chat.');
  });
});

describe('Hide my IP and the server welcome', () => {
  test('offered only when the server hands out a TURN relay', () => {
    assert.equal(offersTurn(TURN), true);
    assert.equal(offersTurn([{ urls: 'turns:relay.example:443' }]), true);
    assert.equal(offersTurn([{ urls: ['stun:127.0.0.1:3478'] }]), false);
    assert.equal(offersTurn([null, 'turn:x']), false);
    const { session, page } = setup();
    online(session, { iceServers: TURN });
    assert.equal(page.shown.hideIpOffered, true);
    assert.equal(page.shown.online, '3 online');
    session.receive({ type: 'online', count: 5 });
    assert.equal(page.shown.online, '5 online');
    session.receive({ type: 'online', count: -1 });
    assert.equal(page.shown.online, '5 online');
  });

  test('checked without a relay: no call starts, and the user is told why first', () => {
    const { session, page } = setup({ hideIp: true });
    online(session);
    assert.match(page.shown.status, /^Hide my IP is on, but no relay is available/);
    assert.equal(page.shown.controls.start, false, 'Start is off');
    assert.equal(page.shown.hideIpOffered, true, 'the checkbox stays, to be turned off');
    session.start();
    assert.equal(page.commands.filter((c) => c.type === 'askMedia').length, 0, 'Start does nothing');
    assert.deepEqual(page.sent, []);
    session.setHideIp(false);
    assert.equal(page.shown.controls.start, true);
    assert.equal(page.shown.hideIpOffered, false, 'without a relay it cannot be turned on again');
    assert.equal(page.shown.status, 'Press Start to talk to a random stranger.');
  });

  test('queued before the welcome said there is no relay: leaves the queue, never calls direct', () => {
    const { session, page } = setup({ hideIp: true });
    session.socketStatus('connected');
    session.socketOpen({ reconnected: false });
    start(session, page);
    assert.deepEqual(types(page.takeSent()), ['join']);
    session.receive({ type: 'welcome', online: 3, iceServers: [] });
    assert.deepEqual(types(page.takeSent()), ['leave']);
    assert.equal(page.shown.state, 'idle');
    // A matched that crossed the leave is ignored (we are no longer looking).
    session.receive({ type: 'matched', room: 'r1', role: 'offerer' });
    assert.equal(page.commands.filter((c) => c.type === 'beginCall').length, 0);
  });

  test('a call made while hiding is relay-only even with no relay: nothing of ours leaks', () => {
    const { session, page } = setup({ hideIp: true });
    session.socketStatus('connected');
    session.socketOpen({ reconnected: false });
    start(session, page);
    session.receive({ type: 'matched', room: 'r1', role: 'offerer' });
    assert.equal(page.commands.find((c) => c.type === 'beginCall').relayOnly, true);
  });

  test('changed during a call: applies from the next call', () => {
    const { session, page } = inCall({ iceServers: TURN });
    session.setHideIp(true);
    assert.equal(page.shown.status, 'Hide my IP is on: it applies from your next call.');
    session.next();
    session.receive({ type: 'matched', room: 'room-2', role: 'offerer' });
    assert.equal(page.commands.find((c) => c.type === 'beginCall').relayOnly, true);
  });
});

describe('Recovering a call that was up', () => {
  test('a stalled picture says so, and never that the call failed', () => {
    const { session, page } = inCall();
    session.callHealth(true);
    assert.equal(page.shown.status, 'Connection interrupted, trying to recover…');
    assert.equal(page.shown.notice.main, 'Connection interrupted, trying to recover…');
    session.peerState('disconnected');
    session.peerState('failed');
    assert.equal(page.shown.status, 'Connection interrupted, trying to recover…');
    session.peerState('connected');
    assert.equal(page.shown.status, 'Connection interrupted, trying to recover…', 'still no picture');
    session.callHealth(false);
    assert.equal(page.shown.status, 'Connected to a stranger. Say hi!');
  });

  test('a call that never connected does fail', () => {
    const { session, page } = setup();
    online(session);
    start(session, page);
    session.receive({ type: 'matched', room: 'r1', role: 'offerer' });
    session.peerState('failed');
    assert.equal(page.shown.status, 'The video connection failed. Press Next to try someone else.');
  });

  test('the socket lost to the network mid-outage: the room is asked back, and ICE re-made', () => {
    const { session, page } = inCall();
    session.peerState('disconnected');
    session.socketDown({ code: 4000 });
    assert.equal(page.shown.status, 'Connection interrupted, trying to recover…');
    online(session, { reconnected: true });
    assert.deepEqual(page.takeSent(), [{ type: 'resume', room: 'room-1', proof: PROOF }]);
    page.takeCommands();
    session.receive({ type: 'resumed', room: 'room-1' });
    assert.deepEqual(page.takeCommands().filter((c) => c.type === 'signalingRestored'), [
      { type: 'signalingRestored', networkChanged: true },
    ]);
  });

  test('the stranger back on a new connection: resumed unasked, ICE re-made', () => {
    const { session, page } = inCall();
    session.receive({ type: 'resumed', room: 'room-1' });
    assert.deepEqual(page.takeCommands().filter((c) => c.type === 'signalingRestored'), [
      { type: 'signalingRestored', networkChanged: true },
    ]);
    assert.equal(page.shown.status, 'Connected to a stranger. Say hi!');
  });

  test('after a server restart both asked: nothing changed on the network', () => {
    const { session, page } = inCall();
    session.socketDown({ code: 1012 });
    online(session, { reconnected: true });
    page.takeCommands();
    session.receive({ type: 'resumed', room: 'room-1' });
    assert.deepEqual(page.takeCommands().filter((c) => c.type === 'signalingRestored'), [
      { type: 'signalingRestored', networkChanged: false },
    ]);
  });
});

describe('offer ahead', () => {
  test('every wait the server confirms says so, with the route of the call to come; Stop says none is coming', () => {
    const { session, page } = setup({ hideIp: true });
    online(session, { iceServers: TURN });
    start(session, page);
    assert.ok(!types(page.takeCommands()).includes('looking'), 'not before the server answers');
    session.receive({ type: 'waiting' });
    const looking = page.takeCommands().filter((c) => c.type === 'looking');
    assert.deepEqual(looking, [{ type: 'looking', iceServers: TURN, relayOnly: true }]);
    session.stop();
    assert.ok(types(page.takeCommands()).includes('idle'));
  });

  test('an early offer goes to the server only while waiting', () => {
    const { session, page } = setup();
    online(session);
    assert.equal(session.earlyOffer('v=0'), false, 'idle: nothing to wait for');
    start(session, page);
    page.takeSent();
    assert.equal(session.earlyOffer('v=0'), true);
    assert.deepEqual(page.takeSent(), [{ type: 'early_offer', sdp: 'v=0' }]);
    session.receive({ type: 'matched', room: 'r1', role: 'offerer', common: [], offered: true });
    assert.equal(session.earlyOffer('v=1'), false, 'in a call: the offer is not for it');
    assert.deepEqual(page.takeSent(), []);
  });

  test("the answerer's call gets the stranger's early offer; the offerer hears its own went", () => {
    for (const [message, expected] of [
      [{ role: 'answerer', offer: 'v=0 theirs' }, { offer: 'v=0 theirs', offered: false }],
      [{ role: 'offerer', offered: true }, { offer: null, offered: true }],
      // An offer is only for an answerer to apply.
      [{ role: 'offerer', offer: 'v=0 stray' }, { offer: null, offered: false }],
    ]) {
      const { session, page } = setup();
      online(session);
      start(session, page);
      page.takeCommands();
      session.receive({ type: 'matched', room: 'r1', common: [], ...message });
      const begin = page.takeCommands().find((c) => c.type === 'beginCall');
      assert.deepEqual({ offer: begin.offer, offered: begin.offered }, expected, JSON.stringify(message));
    }
  });

  test('a page that makes its calls ahead says so in every join and next; one that does not, never', () => {
    for (const ahead of [true, false]) {
      const { session, page } = setup({ ahead });
      online(session);
      start(session, page);
      session.receive({ type: 'waiting' });
      session.receive({ type: 'matched', room: 'r1', role: 'answerer', common: [] });
      session.next();
      const asks = page.takeSent().filter((m) => m.type === 'join' || m.type === 'next');
      assert.deepEqual(
        asks.map((m) => m.ahead),
        ahead ? [true, true] : [undefined, undefined],
        JSON.stringify(asks),
      );
    }
  });

  test('a text chat never says it takes early offers, never prepares a call ahead and sends no early offer', () => {
    const { session, page } = setup({ ahead: true, mode: 'text' });
    online(session);
    session.start();
    session.receive({ type: 'waiting' });
    assert.equal(session.earlyOffer('v=0'), false);
    const sent = page.takeSent();
    assert.deepEqual(sent, [{ type: 'join', interests: [], mode: 'text' }]);
    const made = types(page.takeCommands()).filter((t) => t === 'prepare' || t === 'looking');
    assert.deepEqual(made, [], 'nothing is made ahead for a text chat');
  });

  test('turning Hide my IP on while waiting waits anew, so an offer made for the other route is dropped', () => {
    const { session, page } = setup();
    online(session, { iceServers: TURN });
    start(session, page);
    page.takeSent();
    page.takeCommands();
    session.setHideIp(true);
    assert.deepEqual(page.takeSent(), [{ type: 'leave' }, { type: 'join', interests: [] }]);
    session.receive({ type: 'waiting' });
    const looking = page.takeCommands().find((c) => c.type === 'looking');
    assert.equal(looking.relayOnly, true);
  });
});
