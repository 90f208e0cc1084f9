// What a session shows, worked out from its state: the status line (a lasting status, and
// short messages over it for a few seconds), the online count, and the view the page renders
// (the controls, and the notice over the stranger's video that notice.js words). No DOM:
// session.js owns the state, view.js draws what this returns.

import { CONNECTION_LABELS } from './words.js';
import { t } from './i18n.js';
import { videoNotice } from './notice.js';

/** The status line: a lasting status, and short messages shown over it for a while. */
export class StatusLine {
  #clock;
  #changed;
  #base;
  #shown;
  #timer = null;
  /** When flashSeldom last showed each of its messages. */
  #seldomAt = new Map();

  /**
   * @param {{now(): number, setTimeout(fn: () => void, ms: number): any, clearTimeout(id: any): void}} clock
   * @param {string} text  the first lasting status
   * @param {() => void} changed  called when a short message ends by itself
   */
  constructor(clock, text, changed) {
    this.#clock = clock;
    this.#base = text;
    this.#shown = text;
    this.#changed = changed;
  }

  /** The lasting status. */
  get base() {
    return this.#base;
  }

  /** What the line shows now. */
  get shown() {
    return this.#shown;
  }

  /** Sets the lasting status (and drops any short message it replaces). */
  set(text) {
    // Re-stating the same status (say a "waiting" after our own join) must not cut short a
    // message being shown, such as why the camera is unavailable.
    if (text === this.#base && this.#timer !== null) return;
    this.#base = text;
    this.#clear();
    this.#shown = text;
  }

  /** Shows `text` for `ms`, then the lasting status again. */
  flash(text, ms) {
    this.#clear();
    this.#shown = text;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      this.#shown = this.#base;
      this.#changed();
    }, ms);
  }

  /** As flash, unless `text` was shown this way less than `ms` ago (a notice that must not nag). */
  flashSeldom(text, ms) {
    const now = this.#clock.now();
    if (now - (this.#seldomAt.get(text) ?? -Infinity) < ms) return;
    this.#seldomAt.set(text, now);
    this.flash(text, ms);
  }

  #clear() {
    if (this.#timer === null) return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/**
 * The online line: how many are connected and, from servers that say it, how many are in
 * each mode; null when `count` is not a count.
 */
export function onlineText(count, modes) {
  if (!Number.isInteger(count) || count < 0) return null;
  const all = t('client.online', { count });
  const { video, text } = modes || {};
  if (!Number.isInteger(video) || !Number.isInteger(text)) return all;
  return `${all} · ${t('client.in_modes', { video, text })}`;
}

/**
 * Everything the page shows that depends on the session, from a snapshot of its state:
 * `phase`, `status` (the line's text), `call` (the current call's record or null),
 * `active`, `mediaReady`, `mediaProblem`, `banText` ("" without a ban), `startable`
 * (Start may be pressed), `pauseNotice`, `text` (a text chat), `reporting`,
 * `hideIpOffered`, `socket` and `online`.
 */
export function sessionView(s) {
  const inRoom = s.call !== null;
  return {
    state: s.phase,
    status: s.status,
    notice: videoNotice({ ...s, ban: s.banText }),
    remoteMuted: inRoom && s.call.remoteMedia.audio === false,
    // Without camera or microphone the stranger gets no picture of us: keep saying so for
    // the whole call, even once their picture covers the notice.
    selfUnseen: inRoom && s.mediaProblem !== '',
    controls: {
      // Start: only when not already looking or talking, not while matching is refused,
      // and not while Hide my IP is on with no relay to hide behind.
      start: s.startable,
      // Next: whenever we are looking or talking (it also skips the auto-next pause).
      next: s.active && s.mediaReady,
      stop: s.active || inRoom,
      // Chat and Report: only in a call (there is someone to talk to or report).
      chat: inRoom,
    },
    reporting: s.reporting,
    hideIpOffered: s.hideIpOffered,
    connection: { status: s.socket, label: CONNECTION_LABELS[s.socket] || '' },
    online: s.online,
  };
}
