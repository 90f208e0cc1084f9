// Our camera and microphone (static/media.js) under node, with fake devices and elements:
// what the user is told when one is missing, and the Mute mic / Camera off buttons.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import './catalog.mjs';

import { Media } from '../../static/media.js';

class FakeElement {
  disabled = false;
  srcObject = null;
  attributes = new Map();
  classes = new Set();
  classList = {
    add: (name) => this.classes.add(name),
    toggle: (name, on) => (on ? this.classes.add(name) : this.classes.delete(name)),
  };

  setAttribute(name, value) {
    this.attributes.set(name, value);
  }

  play() {
    return Promise.resolve();
  }
}

const track = (kind) => ({ kind, enabled: true, readyState: 'live' });

function stream(...kinds) {
  const tracks = kinds.map(track);
  return {
    getTracks: () => tracks,
    getAudioTracks: () => tracks.filter((t) => t.kind === 'audio'),
    getVideoTracks: () => tracks.filter((t) => t.kind === 'video'),
  };
}

const failure = (name) => Object.assign(new Error(name), { name });

/** Devices that answer each getUserMedia call with the next of `answers` (a stream or an error name). */
function devices(...answers) {
  const asked = [];
  return {
    asked,
    getUserMedia(constraints) {
      asked.push(constraints);
      const answer = answers.shift();
      return typeof answer === 'string' ? Promise.reject(failure(answer)) : Promise.resolve(answer);
    },
  };
}

function setup(mediaDevices) {
  const ui = { localVideo: new FakeElement(), frame: new FakeElement(), mute: new FakeElement(), camera: new FakeElement() };
  return { media: new Media(ui, mediaDevices), ui };
}

test('camera and microphone: previewed, both buttons on, nothing to report', async () => {
  const granted = stream('audio', 'video');
  const { media, ui } = setup(devices(granted));
  assert.equal(ui.mute.disabled, true, 'nothing to mute before the answer');
  assert.equal(await media.ensure(), '');
  assert.equal(ui.localVideo.srcObject, granted);
  assert.equal(ui.mute.disabled, false);
  assert.equal(ui.camera.disabled, false);
  assert.deepEqual(media.state(), { video: true, audio: true });
  assert.equal(await media.ensure(), '', 'asked once per page');
});

test('permission denied: no media, and the user is told text chat still works', async () => {
  const asked = devices('NotAllowedError');
  const { media, ui } = setup(asked);
  assert.equal(await media.ensure(), 'No camera/microphone: permission denied. You can still text chat.');
  assert.equal(asked.asked.length, 1, 'a refusal is not asked again');
  assert.equal(ui.mute.disabled, true);
  assert.equal(ui.camera.disabled, true);
  assert.deepEqual(media.state(), { video: false, audio: false });
  assert.equal(media.liveTrackCount(), 0);
});

test('no camera found: the microphone alone is used', async () => {
  const { media, ui } = setup(devices('NotFoundError', stream('audio')));
  assert.equal(await media.ensure(), 'No camera: none found. The stranger can still hear you.');
  assert.equal(ui.mute.disabled, false);
  assert.equal(ui.camera.disabled, true);
  assert.ok(ui.frame.classes.has('no-local-video'));
});

test('no microphone found: the camera alone is used', async () => {
  const { media } = setup(devices('NotFoundError', 'NotFoundError', stream('video')));
  assert.equal(await media.ensure(), 'No microphone: none found. The stranger can still see you.');
  assert.deepEqual(media.state(), { video: true, audio: false });
});

test('a page without getUserMedia says it needs HTTPS', async () => {
  const { media } = setup(undefined);
  assert.equal(await media.ensure(), 'No camera/microphone: this page needs HTTPS or a newer browser. You can still text chat.');
});

test('Mute mic and Camera off turn the tracks off and on, and show it', async () => {
  const { media, ui } = setup(devices(stream('audio', 'video')));
  await media.ensure();
  assert.equal(media.toggle('audio'), true);
  assert.equal(ui.mute.attributes.get('aria-pressed'), 'true');
  assert.deepEqual(media.state(), { video: true, audio: false });
  assert.equal(media.toggle('video'), true);
  assert.ok(ui.frame.classes.has('local-camera-off'));
  media.toggle('audio');
  assert.equal(ui.mute.attributes.get('aria-pressed'), 'false');
  assert.deepEqual(media.state(), { video: false, audio: true });
});
