// The client's words (static/i18n.js) under node: placeholders, plural forms by the rules of
// the page's language, and the session, the chat and the camera notices speaking the
// language of the catalog they were given.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { useLanguage } from './catalog.mjs';

import { setCatalog, t, language } from '../../static/i18n.js';
import { Session } from '../../static/session.js';
import { Chat } from '../../static/chat.js';
import { Media } from '../../static/media.js';
import { FakeClock } from './fake-clock.mjs';

test('placeholders are filled in, unknown ones and missing keys stay visible', () => {
  setCatalog('en', { 'client.x': 'Hi {name}, {name}! {other}', 'client.n': { one: '{count} cat', other: '{count} cats' } });
  assert.equal(t('client.x', { name: 'Ana' }), 'Hi Ana, Ana! {other}');
  assert.equal(t('client.n', { count: 1 }), '1 cat');
  assert.equal(t('client.n', { count: 0 }), '0 cats');
  assert.equal(t('client.missing'), 'client.missing');
  assert.equal(t('toString'), 'toString', 'no inherited property passes for a message');
  setCatalog(null, 'not a catalog');
  assert.equal(language(), 'en');
  assert.equal(t('client.x'), 'client.x');
});

test('plural forms follow the language: French says "one" for 0, English and Spanish do not', () => {
  useLanguage('fr');
  assert.equal(t('client.too_long', { count: 0 }), 'Un message ne peut pas dépasser 0 caractère.');
  assert.match(t('client.banned_for', { count: 1 }), /environ 1 minute\.$/);
  assert.match(t('client.banned_for', { count: 2 }), /environ 2 minutes\.$/);
  useLanguage('es');
  assert.equal(t('client.too_long', { count: 0 }), 'Los mensajes pueden tener como máximo 0 caracteres.');
  assert.equal(t('client.too_long', { count: 1 }), 'Los mensajes pueden tener como máximo 1 carácter.');
  useLanguage('en');
  assert.equal(t('client.too_long', { count: 1 }), 'Messages can be at most 1 character.');
});

test('the session, the chat and the camera notices speak the catalog language', async () => {
  useLanguage('es');
  assert.equal(language(), 'es');
  const clock = new FakeClock();
  let shown = null;
  const session = new Session({
    clock,
    send: () => true,
    localMedia: () => ({ video: true, audio: true }),
    command: () => {},
    render: (view) => {
      shown = view;
    },
  });
  session.socketStatus('connected');
  session.socketOpen({ reconnected: false });
  session.receive({ type: 'welcome', online: 1, iceServers: [] });
  assert.equal(shown.status, 'Pulsa Empezar para hablar con un desconocido al azar.');
  assert.equal(shown.online, '1 conectado');
  // A server that says how many are in each mode: the page says it beside the total.
  session.receive({ type: 'online', count: 3, modes: { video: 1, text: 2 } });
  assert.equal(shown.online, '3 conectados · 1 en vídeo · 2 en texto');
  assert.equal(shown.connection.label, 'Conectado');
  session.receive({ type: 'error', code: 'banned', retry_after: 120 });
  assert.match(shown.status, /otros usuarios te han denunciado\. .*2 minutos/);

  const chat = new Chat({ clock, send: () => true, show: { line: () => {}, typing: () => {} } });
  assert.deepEqual(chat.submit('hola'), { sent: false, notice: 'Ahora mismo no estás hablando con nadie.' });

  const ui = {
    localVideo: { play: () => Promise.resolve() },
    frame: { classList: { add() {}, toggle() {} } },
    mute: { setAttribute() {} },
    camera: { setAttribute() {} },
  };
  const denied = { getUserMedia: () => Promise.reject(Object.assign(new Error('no'), { name: 'NotAllowedError' })) };
  assert.equal(await new Media(ui, denied).ensure(), 'Sin cámara ni micrófono: permiso denegado. Aún puedes chatear por texto.');
  useLanguage('en');
});
