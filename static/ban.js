// Matching refused after reports from other users (the server's `banned` error): until
// when, what the page says about it (counted down in minutes), and how often that is
// brought up to date. No DOM and no timers of its own: the session keeps one and asks.

import { TEXT } from './words.js';
import { t } from './i18n.js';

// A ban without retry_after: keep Start off this long before letting the user try again.
const BAN_FALLBACK_S = 60;
// How often the "Try again in about N minutes" text is brought up to date.
const BAN_REFRESH_MS = 30000;

export class Ban {
  /** When the ban ends (ms, the session clock's). */
  until;
  /** Whether the server said for how long (else the page says only that it is refused). */
  timed;

  /**
   * @param {{retry_after?: number}} message  the server's `banned` error
   * @param {number} now  the session clock's time
   */
  constructor(message, now) {
    const seconds = Number.isFinite(message.retry_after) && message.retry_after >= 0 ? message.retry_after : null;
    this.until = now + (seconds ?? BAN_FALLBACK_S) * 1000;
    this.timed = seconds !== null;
  }

  /** Milliseconds until the ban is over (0 or less: it is). */
  left(now) {
    return this.until - now;
  }

  /** When to look again: when it ends, or sooner to bring the minutes shown up to date. */
  refreshIn(now) {
    return Math.min(this.left(now), BAN_REFRESH_MS);
  }

  /** "Try again in about N minutes", counted from `now` (the server's words go to the console). */
  text(now) {
    if (!this.timed) return TEXT.banned;
    const minutes = Math.max(1, Math.ceil(this.left(now) / 60000));
    return t('client.banned_for', { count: minutes });
  }
}
