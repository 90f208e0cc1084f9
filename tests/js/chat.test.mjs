// The text chat (static/chat.js) under node: what is sent and shown when the user types and
// sends, and when the stranger's lines and typing indicator come in.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import './catalog.mjs';

import { Chat } from '../../static/chat.js';
import { FakeClock } from './fake-clock.mjs';

function setup(room = 'r1') {
  const clock = new FakeClock();
  const page = { connected: true, sent: [], lines: [], typing: false };
  const chat = new Chat({
    clock,
    send: (message) => {
      if (!page.connected) return false;
      page.sent.push(message);
      return true;
    },
    show: {
      line: (kind, who, text) => page.lines.push(`${kind} ${who}: ${text}`),
      typing: (active) => {
        page.typing = active;
      },
    },
  });
  chat.setRoom(room);
  page.takeSent = () => page.sent.splice(0);
  return { chat, clock, page };
}

const typing = (active, room = 'r1') => ({ type: 'typing', room, active });

describe('our typing indicator', () => {
  test('typing tells the stranger at once, then at most every 2 s', () => {
    const { chat, clock, page } = setup();
    chat.input('h');
    assert.deepEqual(page.takeSent(), [typing(true)]);
    clock.advance(1_000);
    chat.input('he');
    assert.deepEqual(page.takeSent(), [], 'not again within 2 s');
    clock.advance(1_000);
    chat.input('hel');
    assert.deepEqual(page.takeSent(), [typing(true)], 'a reminder every 2 s while typing');
  });

  test('3 s without a keystroke takes it back', () => {
    const { chat, clock, page } = setup();
    chat.input('hello');
    page.takeSent();
    clock.advance(2_999);
    assert.deepEqual(page.takeSent(), []);
    clock.advance(1);
    assert.deepEqual(page.takeSent(), [typing(false)]);
    clock.advance(10_000);
    assert.deepEqual(page.takeSent(), [], 'said once');
  });

  test('emptying the box takes it back at once', () => {
    const { chat, page } = setup();
    chat.input('oops');
    page.takeSent();
    chat.input('   ');
    assert.deepEqual(page.takeSent(), [typing(false)]);
  });

  test('between calls nothing is sent', () => {
    const { chat, page } = setup(null);
    chat.input('hello');
    assert.deepEqual(page.sent, []);
  });
});

describe('sending', () => {
  test('a line is sent trimmed, shown as ours, and ends our typing', () => {
    const { chat, clock, page } = setup();
    chat.input('  hi there ');
    page.takeSent();
    assert.deepEqual(chat.submit('  hi there '), { sent: true, notice: '' });
    assert.deepEqual(page.takeSent(), [{ type: 'chat', room: 'r1', text: 'hi there' }, typing(false)]);
    assert.deepEqual(page.lines, ['you You: hi there']);
    clock.advance(5_000);
    assert.deepEqual(page.takeSent(), [], 'no typing:false later on');
  });

  test('an empty line is not sent and says nothing', () => {
    const { chat, page } = setup();
    assert.deepEqual(chat.submit('   '), { sent: false, notice: '' });
    assert.deepEqual(page.sent, []);
  });

  test('lines that cannot go out say why and are not shown', () => {
    const between = setup(null);
    assert.deepEqual(between.chat.submit('hello'), { sent: false, notice: "You're not talking to anyone right now." });

    const { chat, page } = setup();
    const long = '✋'.repeat(2001);
    assert.deepEqual(chat.submit(long), { sent: false, notice: 'Messages can be at most 2000 characters.' });
    assert.equal(chat.submit('✋'.repeat(2000)).sent, true, '2000 characters (not UTF-16 units) are fine');
    page.lines.length = 0;
    page.connected = false;
    assert.deepEqual(chat.submit('hello'), { sent: false, notice: 'Not connected to the server; message not sent.' });
    assert.deepEqual(page.lines, []);
  });
});

describe("the stranger's lines and typing", () => {
  test('their typing shows, and goes away after 6 s without news', () => {
    const { chat, clock, page } = setup();
    chat.receive(typing(true));
    assert.equal(page.typing, true);
    clock.advance(5_999);
    assert.equal(page.typing, true);
    clock.advance(1);
    assert.equal(page.typing, false);
  });

  test('a reminder keeps it showing; typing:false hides it', () => {
    const { chat, clock, page } = setup();
    chat.receive(typing(true));
    clock.advance(4_000);
    chat.receive(typing(true));
    clock.advance(4_000);
    assert.equal(page.typing, true);
    chat.receive(typing(false));
    assert.equal(page.typing, false);
  });

  test('their line is shown and replaces the indicator', () => {
    const { chat, page } = setup();
    chat.receive(typing(true));
    chat.receive({ type: 'chat', room: 'r1', text: '<b>hi</b>' });
    assert.equal(page.typing, false);
    assert.deepEqual(page.lines, ['stranger Stranger: <b>hi</b>']);
  });

  test('their line cannot pass for two: line breaks and direction overrides become spaces', () => {
    const { chat, page } = setup();
    chat.receive({ type: 'chat', room: 'r1', text: 'hi\nYou: I am 12\u2028You: \u202esure' });
    assert.deepEqual(page.lines, ['stranger Stranger: hi You: I am 12 You:  sure']);
  });

  test('messages for another room are ignored', () => {
    const { chat, page } = setup('r2');
    chat.receive(typing(true, 'r1'));
    chat.receive({ type: 'chat', room: 'r1', text: 'old' });
    assert.equal(page.typing, false);
    assert.deepEqual(page.lines, []);
  });

  test('the end of the call hides their indicator', () => {
    const { chat, clock, page } = setup();
    chat.receive(typing(true));
    chat.setRoom(null);
    assert.equal(page.typing, false);
    assert.equal(clock.pending, 0, 'no timer left behind');
  });
});
