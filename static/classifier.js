// The stranger's frames to the on-device classifier and its answers back: starts the worker
// (static/safety-worker.js, which loads the vendored model) the first time a call needs it,
// takes a frame of the remote video as soon as the call's first one is shown (or the model is
// ready) and then once a second, one at a time, and hands each frame's class probabilities to
// the page. A blank frame (black, one flat colour) is not judged: the next frame shown is
// taken instead, so the first verdict of a call is always on a picture.
// Frames stay in this browser: they go to the worker and nowhere else.

import { isBlank } from './safety.js';

const INPUT_SIZE = 224; // the model's input; frames are scaled to it here, off the worker
const CHECK_EVERY_MS = 1000;
// A browser without WebAssembly may still have a GPU: WebGL is the second choice. The CPU
// backend is not offered: it takes seconds a frame (BENCHMARKS.md), which is no check at all.
const BACKENDS = ['wasm', 'webgl'];

export class Classifier {
  #video;
  #tracker;
  #version;
  #onResult;
  #onState;
  #worker = null;
  #ready = false;
  #busy = false;
  /** The call's first check found the worker busy with the last call's frame: it is made
   * as soon as the worker answers, not at the next tick a second later. */
  #wanted = false;
  #running = false;
  #timer = null;
  #frameRequest = null;
  #canvas = null;
  #nextId = 0;
  /** The id of the current call's first frame: answers about earlier calls' frames are dropped. */
  #callFirstId = 1;
  /** What the benchmarks read (window.__strangers.safety): times in ms since the page began. */
  stats = { loadStarted: null, ready: null, loadMs: null, backend: null, firstFrame: null, firstResult: null, blank: 0, runs: [], scores: [] };

  /**
   * @param {object} o
   * @param {HTMLVideoElement} o.video  the stranger's video
   * @param {import('./signaling.js').Tracker} o.tracker  counts timers
   * @param {string} o.version  the asset version, for immutable URLs
   * @param {(classes: Record<string, number>) => void} o.onResult  one frame's probabilities
   * @param {(state: 'loading' | 'ready' | 'failed', why?: string) => void} o.onState
   */
  constructor({ video, tracker, version, onResult, onState }) {
    this.#video = video;
    this.#tracker = tracker;
    this.#version = version;
    this.#onResult = onResult;
    this.#onState = onState;
  }

  /** Whether the current call's frames are being checked. */
  get running() {
    return this.#running;
  }

  /** Starts the worker and the model's download (once per page). */
  load() {
    if (this.#worker) return;
    this.stats.loadStarted = performance.now();
    const query = this.#version ? `?v=${encodeURIComponent(this.#version)}` : '';
    try {
      this.#worker = new Worker(`/static/safety-worker.js${query}`);
    } catch (err) {
      this.#fail(`no worker: ${err && err.message}`);
      return;
    }
    this.#worker.onmessage = ({ data }) => this.#receive(data);
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#fail(`worker error: ${event.message || 'unknown'}`);
    };
    this.#worker.postMessage({ type: 'load', backends: BACKENDS, v: this.#version });
    this.#onState('loading');
  }

  /**
   * Checks the current call's frames: the first as soon as it is shown, then once a second
   * (one timer for the whole call, so the page's timer count stays level), one frame in
   * flight at most; checks wait for the model.
   */
  start() {
    this.stop();
    this.#running = true;
    this.#callFirstId = this.#nextId + 1;
    this.#timer = this.#tracker.interval(() => this.#check(), CHECK_EVERY_MS);
    this.#onNextFrame();
  }

  /** Checks the next frame the video shows (where the browser can say when that is). */
  #onNextFrame() {
    const video = this.#video;
    if (this.#frameRequest !== null || typeof video.requestVideoFrameCallback !== 'function') return;
    this.#frameRequest = video.requestVideoFrameCallback(() => {
      this.#frameRequest = null;
      if (this.stats.firstFrame === null) this.stats.firstFrame = performance.now();
      this.#check();
    });
  }

  /** Stops checking (the call ended, or the gate no longer needs checks). */
  stop() {
    this.#running = false;
    this.#wanted = false;
    this.#timer = this.#tracker.clear(this.#timer);
    if (this.#frameRequest !== null && typeof this.#video.cancelVideoFrameCallback === 'function') {
      this.#video.cancelVideoFrameCallback(this.#frameRequest);
    }
    this.#frameRequest = null;
  }

  #check() {
    const video = this.#video;
    if (!this.#running || !this.#ready) return;
    if (this.#busy) {
      // Later checks of a call keep their pace: a tick that finds a frame in flight is skipped.
      if (this.#nextId < this.#callFirstId) this.#wanted = true;
      return;
    }
    if (video.readyState < 2 || !video.videoWidth) {
      this.#onNextFrame();
      return;
    }
    const pixels = this.#grab(video);
    if (!pixels) return;
    if (isBlank(new Uint8ClampedArray(pixels))) {
      this.stats.blank += 1;
      this.#onNextFrame();
      return;
    }
    this.#busy = true;
    this.#nextId += 1;
    this.#worker.postMessage(
      { type: 'classify', id: this.#nextId, width: INPUT_SIZE, height: INPUT_SIZE, pixels },
      [pixels],
    );
  }

  /** The current frame scaled to the model's input, as RGBA bytes (null if it cannot be read). */
  #grab(video) {
    try {
      if (!this.#canvas) {
        this.#canvas =
          typeof OffscreenCanvas === 'function'
            ? new OffscreenCanvas(INPUT_SIZE, INPUT_SIZE)
            : Object.assign(video.ownerDocument.createElement('canvas'), { width: INPUT_SIZE, height: INPUT_SIZE });
      }
      const context = this.#canvas.getContext('2d', { willReadFrequently: true });
      context.drawImage(video, 0, 0, INPUT_SIZE, INPUT_SIZE);
      return context.getImageData(0, 0, INPUT_SIZE, INPUT_SIZE).data.buffer;
    } catch {
      return null;
    }
  }

  #receive(data) {
    if (!data || typeof data.type !== 'string') return;
    if (data.type === 'ready') {
      this.#ready = true;
      this.stats.ready = performance.now();
      this.stats.loadMs = data.loadMs;
      this.stats.backend = data.backend;
      this.#onState('ready');
      this.#check(); // a frame may be waiting already
    } else if (data.type === 'failed') {
      this.#fail(data.reason);
    } else if (data.type === 'result' || data.type === 'error') {
      this.#busy = false;
      if (data.type === 'result' && this.#running && data.id >= this.#callFirstId) {
        if (this.stats.firstResult === null) this.stats.firstResult = performance.now();
        if (this.stats.runs.length < 1000) this.stats.runs.push(data.ms);
        this.#onResult(data.classes);
      }
      if (this.#wanted) {
        this.#wanted = false;
        this.#check();
      }
    }
  }

  #fail(why) {
    this.#ready = false;
    this.stop();
    if (this.#worker) this.#worker.terminate();
    // Keep a worker object so load() does not try again on every call.
    this.#worker = this.#worker || { postMessage() {}, terminate() {} };
    console.info(`strangers: the safety check cannot run here (${why}); the video stays blurred`);
    this.#onState('failed', why);
  }
}
