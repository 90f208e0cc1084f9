// The session logic (static/session.js) of a text chat page, and of the language it joins
// with, under node: a text page never asks for the camera, joins in text mode, is talking
// as soon as it is matched, and asks for its room back after a restart as a text room.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import './catalog.mjs';
import { Session } from '../../static/session.js';
import { Prefs, primaryLanguage } from '../../static/prefs.js';
import { FakeClock } from './fake-clock.mjs';

function setup(options = {}) {
  const clock = new FakeClock();
  const page = { sent: [], commands: [], shown: null };
  const session = new Session({
    clock,
    send: (message) => {
      page.sent.push(message);
      return true;
    },
    localMedia: () => ({ video: false, audio: false }),
    command: (command) => page.commands.push(command),
    render: (view) => {
      page.shown = view;
    },
    ...options,
  });
  session.socketStatus('connected');
  session.socketOpen({ reconnected: false });
  session.receive({ type: 'welcome', online: 2, iceServers: [] });
  return { session, clock, page };
}

test('a text page joins in text mode at Start, without asking for the camera', () => {
  const { session, page } = setup({ mode: 'text', lang: 'de', interests: ['chess'] });
  session.start();
  assert.equal(
    page.commands.filter((c) => c.type === 'askMedia').length,
    0,
    'no camera question on a text page',
  );
  assert.deepEqual(page.sent, [{ type: 'join', interests: ['chess'], mode: 'text', lang: 'de' }]);
  assert.equal(page.shown.state, 'waiting');
  assert.equal(page.shown.controls.next, true, 'Next works without a camera');
  assert.equal(page.shown.hideIpOffered, false, 'nothing to hide in a text chat');
});

test('a text chat is up as soon as it is matched: chat on, no call to connect', () => {
  const { session, page } = setup({ mode: 'text' });
  session.start();
  session.receive({ type: 'matched', room: 'r1', role: 'offerer', mode: 'text', common: [], same_lang: true, proof: 'ab'.repeat(32) });
  const begin = page.commands.find((c) => c.type === 'beginCall');
  assert.equal(begin.sameLang, true, 'the page is told the language is shared');
  assert.equal(page.shown.state, 'connected');
  assert.equal(page.shown.controls.chat, true);
  assert.match(page.shown.status, /chatting with a random stranger/);
  assert.equal(page.shown.remoteMuted, false);
  assert.ok(!page.sent.some((m) => m.type === 'media'), 'no camera state to tell');
});

test('after a server restart a text chat asks for its room back as a text room', () => {
  const { session, page } = setup({ mode: 'text' });
  session.start();
  session.receive({ type: 'matched', room: 'r1', role: 'answerer', mode: 'text', common: [], same_lang: false, proof: 'cd'.repeat(32) });
  page.sent.length = 0;
  session.socketDown({ code: 1012 });
  assert.doesNotMatch(page.shown.status, /call goes on/, 'a text chat needs the server');
  session.socketOpen({ reconnected: true });
  assert.deepEqual(page.sent, [{ type: 'resume', room: 'r1', proof: 'cd'.repeat(32), mode: 'text' }]);
});

test('a video page without a language sends the join of before', () => {
  const { session, page } = setup();
  session.start();
  const ask = page.commands.find((c) => c.type === 'askMedia');
  session.mediaReady(ask.generation, '');
  assert.deepEqual(page.sent, [{ type: 'join', interests: [] }]);
});

test('the language: the landing page choice, else remembered, else the browser\'s', () => {
  const items = new Map();
  const storage = () => ({ getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, v) });
  assert.equal(new Prefs('', storage).lang('pt-BR'), 'pt', 'the browser language, primary subtag');
  assert.equal(new Prefs('?speak=DE', storage).lang('pt-BR'), 'de');
  assert.equal(new Prefs('', storage).lang('pt-BR'), 'de', 'remembered');
  assert.equal(new Prefs('?speak=', storage).lang('pt-BR'), '', 'any language');
  assert.equal(new Prefs('', storage).lang('pt-BR'), '', 'and that is remembered too');
  for (const bad of ['', 'x', 'i-klingon', 'de1', '12']) assert.equal(primaryLanguage(bad), '', bad);
  assert.equal(primaryLanguage('zh-Hant-TW'), 'zh');
});
