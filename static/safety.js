// Whether the stranger's video may be shown ("Blur until safe"): the verdict rule over the
// classifier's class probabilities, and the gate that turns the call, the model's state, the
// verdicts and the user's taps into "blurred or not" and what the notice over the video says.
// No DOM and no browser globals, so it runs under node too; the classifier itself is
// static/classifier.js (frames) and static/safety-worker.js (the model). Nothing here is ever
// sent to the server or the stranger.

import { t } from './i18n.js';

/** Every user-visible string of the safety gate, by name, in the page's language (i18n.js). */
export const SAFETY_TEXT = {
  get checking() {
    return t('client.safety_checking');
  },
  get unsafe() {
    return t('client.safety_unsafe');
  },
  get unsafeSub() {
    return t('client.safety_unsafe_sub');
  },
  get failed() {
    return t('client.safety_failed');
  },
  get failedSub() {
    return t('client.safety_failed_sub');
  },
  get next() {
    return t('client.safety_next');
  },
  get report() {
    return t('client.safety_report');
  },
  get show() {
    return t('client.safety_show');
  },
};

/** The threshold when the page is not told one: half the probability on the unsafe classes. */
export const DEFAULT_UNSAFE_THRESHOLD = 0.5;

/** The classes of the NSFWJS model that count as unsafe to show unasked. */
const UNSAFE_CLASSES = ['Porn', 'Hentai', 'Sexy'];

/**
 * The probability the classifier puts on the unsafe classes, 0..1.
 * @param {Record<string, number>} classes  e.g. {Drawing, Hentai, Neutral, Porn, Sexy}
 */
export function unsafeScore(classes) {
  let score = 0;
  for (const name of UNSAFE_CLASSES) {
    const p = Number(classes && classes[name]);
    if (Number.isFinite(p) && p > 0) score += p;
  }
  return Math.min(1, score);
}

/** A frame is unsafe when its unsafe score reaches the threshold. */
export function isUnsafe(classes, threshold) {
  return unsafeScore(classes) >= threshold;
}

/** How little the brightness of a frame may vary for it to count as blank (0..255). */
const BLANK_SPREAD = 6;

/**
 * Whether an RGBA frame is blank (black, or one flat colour: the first frames of a call, a
 * covered camera): such a frame says nothing about what comes next, so it is never judged
 * safe; the check waits for a frame with something in it. Looks at every 7th pixel.
 * @param {Uint8ClampedArray|Uint8Array} rgba
 */
export function isBlank(rgba) {
  let n = 0;
  let sum = 0;
  let squares = 0;
  for (let i = 0; i + 2 < rgba.length; i += 4 * 7) {
    const luma = 0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2];
    n += 1;
    sum += luma;
    squares += luma * luma;
  }
  if (n === 0) return true;
  const mean = sum / n;
  return Math.sqrt(Math.max(0, squares / n - mean * mean)) < BLANK_SPREAD;
}

/**
 * The threshold the page was given (a data attribute the server renders), or the default
 * when it is missing or not a number in (0, 1].
 */
export function parseThreshold(raw) {
  const t = Number.parseFloat(raw);
  return Number.isFinite(t) && t > 0 && t <= 1 ? t : DEFAULT_UNSAFE_THRESHOLD;
}

/**
 * The gate. The video is blurred unless the user turned the gate off, or the last verdict in
 * this call was safe, or the model cannot run here and the user tapped to show it. An unsafe
 * verdict is final for the call: a later safe frame does not unblur someone who has just
 * shown something unsafe, and a tap never reveals it.
 */
export class SafetyGate {
  #enabled;
  #autoSkip;
  #onChange;
  #onAutoSkip;
  #model = 'idle'; // 'idle' | 'loading' | 'ready' | 'failed'
  #inCall = false;
  #verdict = null; // null | 'safe' | 'unsafe'
  #revealed = false;
  #skipped = false;

  /**
   * @param {object} o
   * @param {boolean} o.enabled  "Blur until safe" is on
   * @param {boolean} o.autoSkip  "Auto-skip unsafe" is on
   * @param {() => void} o.onChange  the view must be shown again
   * @param {() => void} o.onAutoSkip  press Next (an unsafe verdict with auto-skip on)
   */
  constructor({ enabled, autoSkip, onChange = () => {}, onAutoSkip = () => {} }) {
    this.#enabled = Boolean(enabled);
    this.#autoSkip = Boolean(autoSkip);
    this.#onChange = onChange;
    this.#onAutoSkip = onAutoSkip;
  }

  get enabled() {
    return this.#enabled;
  }

  /** Whether this call's frames are to be classified (as soon as the model is there). */
  get checking() {
    return this.#enabled && this.#inCall && this.#model !== 'failed' && this.#verdict !== 'unsafe';
  }

  /** Whether the model is needed (the gate is on; loading starts with the first call). */
  get wantsModel() {
    return this.#enabled && this.#model === 'idle';
  }

  get model() {
    return this.#model;
  }

  get verdict() {
    return this.#verdict;
  }

  beginCall() {
    this.#inCall = true;
    this.#verdict = null;
    this.#revealed = false;
    this.#skipped = false;
    this.#onChange();
  }

  endCall() {
    this.#inCall = false;
    this.#verdict = null;
    this.#revealed = false;
    this.#onChange();
  }

  modelLoading() {
    if (this.#model === 'idle') this.#model = 'loading';
    this.#onChange();
  }

  modelReady() {
    this.#model = 'ready';
    this.#onChange();
  }

  modelFailed() {
    this.#model = 'failed';
    this.#onChange();
  }

  /** A classified frame of the current call. */
  verdictIs(unsafe) {
    if (!this.#inCall || !this.#enabled || this.#verdict === 'unsafe') return;
    this.#verdict = unsafe ? 'unsafe' : 'safe';
    this.#onChange();
    if (unsafe && this.#autoSkip && !this.#skipped) {
      this.#skipped = true;
      this.#onAutoSkip();
    }
  }

  /** A tap on the blurred video or on "Tap to show": reveals it only when no check can run. */
  tap() {
    if (!this.#enabled || !this.#inCall || this.#model !== 'failed' || this.#verdict === 'unsafe') return false;
    if (this.#revealed) return false;
    this.#revealed = true;
    this.#onChange();
    return true;
  }

  setEnabled(on) {
    this.#enabled = Boolean(on);
    // Turned on in the middle of a call: this stranger has not been checked.
    if (this.#enabled) this.#verdict = null;
    this.#revealed = false;
    this.#onChange();
  }

  setAutoSkip(on) {
    this.#autoSkip = Boolean(on);
    if (this.#autoSkip && this.#verdict === 'unsafe' && !this.#skipped) {
      this.#skipped = true;
      this.#onAutoSkip();
    }
  }

  /**
   * What the page shows: `blurred`, and `notice`, null or {kind: 'checking' | 'unsafe' |
   * 'failed', text, sub, actions: ['next', 'report'] or ['show']}.
   */
  view() {
    if (!this.#enabled) return { blurred: false, notice: null };
    if (!this.#inCall) return { blurred: true, notice: null };
    const T = SAFETY_TEXT;
    if (this.#verdict === 'unsafe') {
      return { blurred: true, notice: { kind: 'unsafe', text: T.unsafe, sub: T.unsafeSub, actions: ['next', 'report'] } };
    }
    if (this.#verdict === 'safe') return { blurred: false, notice: null };
    if (this.#model === 'failed') {
      if (this.#revealed) return { blurred: false, notice: null };
      return { blurred: true, notice: { kind: 'failed', text: T.failed, sub: T.failedSub, actions: ['show'] } };
    }
    return { blurred: true, notice: { kind: 'checking', text: T.checking, sub: '', actions: [] } };
  }
}
