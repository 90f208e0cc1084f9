// Text chat with the current stranger: which lines are sent and shown, and the "Stranger
// is typing…" indicator both ways (when to tell the stranger we type, when to stop showing
// that they do). No DOM and no browser globals: the clock, the signaling send and what to
// show come in, so it runs under node too.

import { t } from './i18n.js';

const MAX_CHAT_CHARS = 2000;
const TYPING_THROTTLE_MS = 2000;
const TYPING_IDLE_MS = 3000;
// The stranger re-sends typing:true every 2 s while typing; if that stops without a
// typing:false (lost, or they closed the tab) stop showing it.
const TYPING_STALE_MS = 6000;

/**
 * The stranger's text as one line: line breaks, other control characters and Unicode
 * direction overrides become spaces, so a line cannot pass for one of ours ("hi⏎You: …").
 * The server refuses such text already; this holds against any server.
 */
export function oneLine(text) {
  return text.replace(/[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu, ' ');
}

export class Chat {
  #clock;
  #send;
  #show;
  /** The room of the current call, or null between calls. */
  #room = null;
  /** We told the stranger we are typing (and have not taken it back). */
  #typingActive = false;
  #typingSentAt = 0;
  #idleTimer = null;
  #staleTimer = null;

  /**
   * @param {object} o
   * @param {{now(): number, setTimeout(fn: () => void, ms: number): any, clearTimeout(id: any): void}} o.clock
   * @param {(message: object) => boolean} o.send  sends a signaling message; false if not connected
   * @param {{line(kind: string, who: string, text: string): void, typing(active: boolean): void}} o.show
   *   adds a line to the chat log ("you" or "stranger"); shows or hides the typing indicator
   */
  constructor({ clock, send, show }) {
    this.#clock = clock;
    this.#send = send;
    this.#show = show;
  }

  /** A call began in `room`, or (null) the call ended: typing state is forgotten both ways. */
  setRoom(room) {
    this.#stopTyping(false);
    this.#showRemoteTyping(false);
    this.#room = room;
  }

  /** The message box now holds `value` (the user typed or deleted something). */
  input(value) {
    if (this.#room === null) return;
    if (String(value).trim() === '') {
      this.#stopTyping(true);
      return;
    }
    const now = this.#clock.now();
    if (!this.#typingActive || now - this.#typingSentAt >= TYPING_THROTTLE_MS) {
      this.#typingSentAt = now;
      this.#sendTyping(true);
    }
    this.#clock.clearTimeout(this.#idleTimer);
    this.#idleTimer = this.#clock.setTimeout(() => {
      this.#idleTimer = null;
      this.#stopTyping(true);
    }, TYPING_IDLE_MS);
  }

  /**
   * The user sends `value`. Returns {sent, notice}: `sent` when it went out (the box can be
   * emptied), `notice` a reason to show when it could not.
   */
  submit(value) {
    const text = String(value).trim();
    if (!text) return { sent: false, notice: '' };
    if (this.#room === null) return { sent: false, notice: t('client.not_talking') };
    if ([...text].length > MAX_CHAT_CHARS) {
      return { sent: false, notice: t('client.too_long', { count: MAX_CHAT_CHARS }) };
    }
    if (!this.#send({ type: 'chat', room: this.#room, text })) {
      return { sent: false, notice: t('client.chat_not_sent') };
    }
    this.#show.line('you', t('client.you'), text);
    this.#stopTyping(true);
    return { sent: true, notice: '' };
  }

  /** A chat or typing message from the server. */
  receive(message) {
    if (this.#room === null || message.room !== this.#room) return; // a room we left
    if (message.type === 'chat' && typeof message.text === 'string') {
      this.#showRemoteTyping(false);
      this.#show.line('stranger', t('client.stranger'), oneLine(message.text));
    } else if (message.type === 'typing') {
      this.#showRemoteTyping(message.active === true);
    }
  }

  #showRemoteTyping(active) {
    this.#show.typing(active);
    this.#clock.clearTimeout(this.#staleTimer);
    this.#staleTimer = null;
    if (!active) return;
    this.#staleTimer = this.#clock.setTimeout(() => {
      this.#staleTimer = null;
      this.#showRemoteTyping(false);
    }, TYPING_STALE_MS);
  }

  #sendTyping(active) {
    if (this.#room === null) return;
    this.#typingActive = active;
    this.#send({ type: 'typing', room: this.#room, active });
  }

  /** Ends our typing state; tells the stranger only if they were told we were typing. */
  #stopTyping(notify) {
    this.#clock.clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    if (this.#typingActive && notify) this.#sendTyping(false);
    this.#typingActive = false;
    this.#typingSentAt = 0;
  }
}
