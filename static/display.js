// What a session shows, worked out from its state: the status line (a lasting status, and
// short messages over it for a few seconds), a ban and its words, the online count, and the
// view the page renders (the controls, the notice over the stranger's video). No DOM:
// session.js owns the state, view.js draws what this returns.

import { CONNECTION_LABELS, TEXT } from './words.js';
import { t } from './i18n.js';

// A ban without retry_after: keep Start off this long before letting the user try again.
const BAN_FALLBACK_S = 60;
// How often the "Try again in about N minutes" text is brought up to date.
const BAN_REFRESH_MS = 30000;

/** A refusal to match (after reports): when it ends, and how the page words it. */
export class Ban {
  /**
   * @param {unknown} retryAfter  the `banned` error's `retry_after` (seconds), if any
   * @param {number} now  ms
   */
  constructor(retryAfter, now) {
    const seconds = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : null;
    this.until = now + (seconds ?? BAN_FALLBACK_S) * 1000;
    /** Whether the server said for how long. */
    this.timed = seconds !== null;
  }

  /** How long until the ban ends (ms; 0 or less once it has). */
  left(now) {
    return this.until - now;
  }

  /** When to bring the words up to date next (ms from now). */
  refreshIn(now) {
    return Math.min(this.left(now), BAN_REFRESH_MS);
  }

  /** "Try again in about N minutes", counted from `now`; without a time, that matching is refused. */
  text(now) {
    if (!this.timed) return TEXT.banned;
    const minutes = Math.max(1, Math.ceil(this.left(now) / 60000));
    return t('client.banned_for', { count: minutes });
  }
}

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
    notice: notice(s),
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

/** The overlay on the remote video: what is happening while there is no picture. */
function notice(s) {
  const call = s.call;
  const cameraOff = call !== null && call.remoteMedia.video === false;
  let main = '';
  if (s.phase === 'idle') {
    // Idle but active: the short pause before auto-next joins again.
    if (s.banText) main = s.banText;
    else main = s.active ? s.pauseNotice : TEXT.idle;
  } else if (s.phase === 'waiting') {
    main = s.mediaReady ? TEXT.looking : TEXT.starting;
  } else if (s.text) {
    // No picture to cover: the frame says what is going on.
    main = s.phase === 'connecting' ? TEXT.connecting : TEXT.textConnected;
  } else if (s.phase === 'connecting') {
    main = TEXT.connecting;
  } else if (call && call.stalled) {
    main = TEXT.interrupted;
  } else if (cameraOff) {
    main = TEXT.remoteCameraOff;
  } else if (call && !call.remoteVideo) {
    main = TEXT.noRemoteVideo;
  }
  const showingVideo = s.phase === 'connected' && main === '';
  return {
    main,
    // Still connecting, but already told the stranger's camera is off.
    info: s.phase === 'connecting' && cameraOff ? TEXT.remoteCameraOff : '',
    // Our own media problem stays visible until the stranger's picture covers it.
    sub: showingVideo ? '' : s.mediaProblem,
  };
}
