// The "Blur until safe" gate (static/safety.js), under node: what the page shows of the
// stranger's video for every state of the call, the model, the verdicts and the user's taps.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import './catalog.mjs';

import { SafetyGate, SAFETY_TEXT, isBlank, isUnsafe, parseThreshold, unsafeScore } from '../../static/safety.js';

function gate(options = {}) {
  const events = { changes: 0, skips: 0 };
  const g = new SafetyGate({
    enabled: true,
    autoSkip: false,
    onChange: () => {
      events.changes += 1;
    },
    onAutoSkip: () => {
      events.skips += 1;
    },
    ...options,
  });
  return { g, events };
}

const SAFE = { Drawing: 0.1, Hentai: 0.02, Neutral: 0.85, Porn: 0.02, Sexy: 0.01 };
const NUDE = { Drawing: 0.0, Hentai: 0.05, Neutral: 0.05, Porn: 0.8, Sexy: 0.1 };

test('the unsafe score is the probability on Porn, Hentai and Sexy together', () => {
  assert.ok(Math.abs(unsafeScore(SAFE) - 0.05) < 1e-9);
  assert.ok(Math.abs(unsafeScore(NUDE) - 0.95) < 1e-9);
  assert.equal(unsafeScore({}), 0);
  assert.equal(unsafeScore({ Porn: NaN, Sexy: -1 }), 0, 'nonsense counts for nothing');
  assert.equal(isUnsafe(SAFE, 0.5), false);
  assert.equal(isUnsafe(NUDE, 0.5), true);
  assert.equal(isUnsafe(SAFE, 0.01), true, 'a low threshold makes the same frame unsafe');
});

test('a threshold the page cannot use falls back to the default', () => {
  assert.equal(parseThreshold('0.25'), 0.25);
  assert.equal(parseThreshold('1'), 1);
  for (const bad of [undefined, '', 'x', '0', '-1', '2', 'NaN']) assert.equal(parseThreshold(bad), 0.5, String(bad));
});

test('the video is blurred from the start of a call until a safe verdict', () => {
  const { g } = gate();
  assert.deepEqual(g.view(), { blurred: true, notice: null }, 'no call: blurred, nothing to say');
  g.modelLoading();
  g.beginCall();
  assert.equal(g.view().blurred, true);
  assert.equal(g.view().notice.kind, 'checking');
  assert.equal(g.view().notice.text, SAFETY_TEXT.checking);
  assert.equal(g.checking, true, 'checks wait for the model');
  assert.equal(g.tap(), false, 'a tap does not reveal an unchecked video');
  g.modelReady();
  assert.equal(g.checking, true);
  g.verdictIs(false);
  assert.deepEqual(g.view(), { blurred: false, notice: null });
  assert.equal(g.checking, true, 'checked again for the whole call');
});

test('an unsafe verdict blurs at once, offers Next and Report, and sticks for the call', () => {
  const { g, events } = gate();
  g.modelReady();
  g.beginCall();
  g.verdictIs(false);
  g.verdictIs(true);
  const { blurred, notice } = g.view();
  assert.equal(blurred, true);
  assert.equal(notice.kind, 'unsafe');
  assert.equal(notice.text, SAFETY_TEXT.unsafe);
  assert.deepEqual(notice.actions, ['next', 'report']);
  assert.equal(g.checking, false, 'no more checks needed');
  g.verdictIs(false);
  assert.equal(g.view().blurred, true, 'a later safe frame does not unblur');
  assert.equal(g.tap(), false, 'a tap never reveals it');
  assert.equal(g.view().blurred, true);
  assert.equal(events.skips, 0, 'without Auto-skip unsafe the user decides');
  g.endCall();
  g.beginCall();
  assert.equal(g.view().notice.kind, 'checking', 'the next stranger starts unchecked');
});

test('Auto-skip unsafe presses Next once per unsafe call', () => {
  const { g, events } = gate({ autoSkip: true });
  g.modelReady();
  g.beginCall();
  g.verdictIs(true);
  g.verdictIs(true);
  assert.equal(events.skips, 1);
  g.endCall();
  g.beginCall();
  g.verdictIs(false);
  assert.equal(events.skips, 1, 'a safe stranger is not skipped');
  const late = gate();
  late.g.modelReady();
  late.g.beginCall();
  late.g.verdictIs(true);
  late.g.setAutoSkip(true);
  assert.equal(late.events.skips, 1, 'turned on while an unsafe video is blurred: skips it');
});

test('a model that cannot load keeps the video blurred until the user taps to show it', () => {
  const { g } = gate();
  g.modelLoading();
  g.beginCall();
  g.modelFailed();
  const { blurred, notice } = g.view();
  assert.equal(blurred, true, 'fail safe: never silently unblurred');
  assert.equal(notice.kind, 'failed');
  assert.equal(notice.text, SAFETY_TEXT.failed);
  assert.deepEqual(notice.actions, ['show']);
  assert.equal(g.checking, false);
  assert.equal(g.tap(), true);
  assert.deepEqual(g.view(), { blurred: false, notice: null });
  g.endCall();
  g.beginCall();
  assert.equal(g.view().blurred, true, 'each new stranger is blurred again');
  assert.equal(g.view().notice.kind, 'failed');
});

test('turned off, nothing is blurred or checked; turned on mid-call, the stranger is checked', () => {
  const { g } = gate({ enabled: false });
  assert.equal(g.wantsModel, false, 'no model download while off');
  g.beginCall();
  assert.deepEqual(g.view(), { blurred: false, notice: null });
  assert.equal(g.checking, false);
  g.setEnabled(true);
  assert.equal(g.wantsModel, true);
  assert.equal(g.view().blurred, true);
  assert.equal(g.checking, true);
  g.modelReady();
  g.verdictIs(false);
  g.setEnabled(false);
  g.setEnabled(true);
  assert.equal(g.view().blurred, true, 'turned on again: checked again');
});

test('verdicts outside a call change nothing', () => {
  const { g } = gate();
  g.modelReady();
  g.verdictIs(false);
  g.beginCall();
  assert.equal(g.view().blurred, true);
});

test('a black or flat frame is blank and never judged; a frame with a picture is not blank', () => {
  const size = 224 * 224 * 4;
  const black = new Uint8ClampedArray(size);
  assert.equal(isBlank(black), true, 'black');
  const grey = new Uint8ClampedArray(size).fill(128);
  assert.equal(isBlank(grey), true, 'one flat colour');
  const noisy = grey.map((v, i) => v + ((i * 7919) % 5) - 2);
  assert.equal(isBlank(noisy), true, 'a flat colour with sensor noise');
  const picture = new Uint8ClampedArray(size);
  for (let i = 0; i < size; i += 4) {
    const x = (i / 4) % 224;
    picture[i] = picture[i + 1] = picture[i + 2] = x < 112 ? 30 : 220; // half dark, half light
    picture[i + 3] = 255;
  }
  assert.equal(isBlank(picture), false, 'two halves');
  assert.equal(isBlank(new Uint8ClampedArray(0)), true, 'no pixels at all');
});
