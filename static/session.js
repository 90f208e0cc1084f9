// The session logic: what the page is doing (idle, waiting, in a call, banned…), and how user
// actions, server messages and socket changes move it on. What the page shows in each state
// is worked out in display.js, and the current call's record kept in call-state.js. No DOM
// and no browser globals: time, timers and the signaling send are handed in, and everything
// else the page must do comes out as commands. It runs the same in a browser and under node.
//
//   idle ──Start──► waiting ──matched──► connecting ──pc connected──► connected
//    ▲                 ▲                      │                          │
//    └──── Stop ───────┴──── Next / left ─────┴──────────────────────────┘

import { TEXT } from './words.js';
import { t } from './i18n.js';
import { StatusLine, onlineText, sessionView } from './display.js';
import { CallRecord, offersTurn, readMatched } from './call-state.js';
import { Ban } from './ban.js';

const AUTO_NEXT_DELAY_MS = 1000;
const CONNECT_HINT_MS = 15000;
const TRANSIENT_STATUS_MS = 4000;
const RATE_LIMIT_NOTICE_MS = 3000;
const MEDIA_PROBLEM_MS = 6000;
const RECONNECTED_MS = 2000;
const REPORT_REASONS = ['nudity', 'harassment', 'spam', 'under_18', 'other'];

/**
 * One page's session with the server and the strangers it meets.
 *
 * Commands it gives (to `command`, in order, after each change of state):
 *   {type: 'askMedia', generation}   get camera and microphone, then call mediaReady()
 *   {type: 'prepare', iceServers, relayOnly}   we asked for a stranger: make the next
 *                                    call's connection (its candidates take a while)
 *   {type: 'looking', iceServers, relayOnly}   the server has us waiting: the same, and
 *                                    its early offer
 *   {type: 'beginCall', room, role, common, sameLang, iceServers, relayOnly, offer, offered}
 *                                    open a call (`offer`: the stranger's early offer, to answer;
 *                                    `offered`: ours went to the stranger)
 *   {type: 'endCall', next}          close the current call (`next`: another one is coming)
 *   {type: 'idle'}                   no call is coming: drop what was made ahead for one
 *   {type: 'signalingRestored', networkChanged}   the room is back on signaling: re-make
 *                                    an ICE restart that may have been lost (call.js)
 *   {type: 'clearLog'}               empty the chat log
 *   {type: 'line', text}             a system line in the chat log
 *   {type: 'log', text}              a diagnostic for the console
 * and after every change `render(this.view())`.
 */
export class Session {
  #clock;
  #send;
  #localMedia;
  #command;
  #render;
  #interests;
  #queue = [];
  #busy = false;
  #timers = { autoJoin: null, connectHint: null, ban: null };

  /** "idle" | "waiting" | "connecting" | "connected" */
  #phase = 'idle';
  /** The user pressed Start and has not pressed Stop (we want to be matched). */
  #active = false;
  /** The current call or text chat (call-state.js), or null. @type {CallRecord|null} */
  #call = null;
  /** The room of a call that went on while signaling reconnected; asked back on reconnect. */
  #resuming = null;
  /** Refused matching (ban.js), or null. @type {Ban|null} */
  #ban = null;
  #mediaReady = false;
  /** Why we have no camera or microphone, for the notice; "" when all is well. */
  #mediaProblem = '';
  /** Bumped whenever a Start is over, so a late media answer cannot join. */
  #generation = 0;
  /** What the idle-but-active pause before auto-next shows on the video. */
  #pauseNotice = TEXT.strangerLeft;
  /** @type {StatusLine} */
  #status;
  #reporting = false;
  #socket = 'connecting';
  #online = '';
  #iceServers = [];
  #turnOffered = false;
  /** A welcome has said whether there is a relay. */
  #welcomed = false;
  #hideIp;
  /** Why the room is being asked back: "restart" (the server's) or "network" (ours). */
  #resumeReason = null;
  #autoNext;
  /** Whether the user has confirmed being 18 or older (gate.js): no Start before. */
  #confirmed;
  /** A text chat: no camera, no peer connection; the room is up as soon as it is matched. */
  #text;
  /** Whether this page makes its calls ahead and takes a stranger's early offer in `matched`. */
  #ahead;
  /** The language we join with ("" for none). */
  #lang;

  /**
   * @param {object} o
   * @param {{now(): number, setTimeout(fn: () => void, ms: number): any, clearTimeout(id: any): void}} o.clock
   * @param {(message: object) => boolean} o.send  sends a signaling message; false if not connected
   * @param {() => {video: boolean, audio: boolean}} o.localMedia  whether we send live video and audio
   * @param {(command: object) => void} o.command
   * @param {(view: object) => void} [o.render]
   * @param {string[]} [o.interests]  what we join with
   * @param {boolean} [o.hideIp]  "Hide my IP" is checked
   * @param {boolean} [o.autoNext]  "Auto-next" is checked
   * @param {'video'|'text'} [o.mode]  a video call, or a text chat (never asks for the camera)
   * @param {string} [o.lang]  our language's primary subtag ("de"), "" for none
   * @param {boolean} [o.ahead]  this page makes its next call ahead (warm.js) and takes a
   *   stranger's early offer in `matched`: said in every join and next (never for text)
   * @param {() => boolean} [o.confirmed]  the 18+ confirmation is given
   */
  constructor({
    clock,
    send,
    localMedia,
    command,
    render = () => {},
    interests = [],
    hideIp = false,
    autoNext = true,
    mode = 'video',
    lang = '',
    ahead = false,
    confirmed = () => true,
  }) {
    this.#clock = clock;
    this.#status = new StatusLine(clock, TEXT.idle, () => this.#run(() => {}));
    this.#send = send;
    this.#localMedia = localMedia;
    this.#command = command;
    this.#render = render;
    this.#interests = interests;
    this.#hideIp = hideIp;
    this.#autoNext = autoNext;
    this.#confirmed = confirmed;
    this.#text = mode === 'text';
    this.#lang = typeof lang === 'string' ? lang : '';
    this.#ahead = ahead === true && !this.#text;
  }

  /** "video" | "text" */
  get mode() {
    return this.#text ? 'text' : 'video';
  }

  get state() {
    return this.#phase;
  }

  get room() {
    return this.#call ? this.#call.room : null;
  }

  get role() {
    return this.#call ? this.#call.role : null;
  }

  // ------------------------------------------------------------ user actions

  start() {
    this.#run(() => {
      if (!this.#startable()) return;
      this.#active = true;
      this.#generation += 1;
      this.#clearTimer('autoJoin');
      this.#phase = 'waiting';
      if (this.#text) {
        // No camera to ask for: look for a stranger at once.
        this.#mediaReady = true;
        this.#join();
        return;
      }
      if (!this.#mediaReady) this.#setStatus(TEXT.starting);
      this.#emit({ type: 'askMedia', generation: this.#generation });
    });
  }

  /** The camera question of Start number `generation` is answered; `problem` is "" if all is well. */
  mediaReady(generation, problem) {
    this.#run(() => {
      this.#mediaReady = true;
      this.#mediaProblem = problem || '';
      // Stop (and maybe Start again) may have been pressed while the browser asked.
      if (!this.#active || generation !== this.#generation) return;
      this.#join();
      if (this.#mediaProblem) this.#flash(this.#mediaProblem, MEDIA_PROBLEM_MS);
    });
  }

  next() {
    this.#run(() => {
      if (!this.#active || !this.#mediaReady) return;
      this.#clearTimer('autoJoin');
      this.#emit({ type: 'clearLog' });
      if (!this.#call) {
        // Not in a room (waiting, or pausing before auto-next): join carries our interests.
        this.#join();
        return;
      }
      // The server ends the room (the stranger is told) and queues us again.
      if (this.#send(this.#offersAhead({ type: 'next' }))) this.#makeAhead('prepare');
      this.#endCall(true);
      this.#phase = 'waiting';
      this.#setStatus(TEXT.looking);
    });
  }

  stop() {
    this.#run(() => {
      if (!this.#active && !this.#call) return;
      this.#deactivate(true);
      this.#setStatus(TEXT.left);
    });
  }

  openReport() {
    this.#run(() => {
      if (this.#call) this.#reporting = true;
    });
  }

  closeReport() {
    this.#run(() => {
      this.#reporting = false;
    });
  }

  report(reason) {
    this.#run(() => {
      if (!REPORT_REASONS.includes(reason)) return;
      this.#reporting = false;
      if (!this.#call) return;
      if (!this.#send({ type: 'report', room: this.#call.room, reason })) {
        this.#flash(TEXT.reportNotSent);
        return;
      }
      // The report ends the room on the server (the stranger just sees us leave) and leaves
      // us idle, so this leave does nothing there; it only makes sure the room ends even if
      // the report was refused.
      this.#send({ type: 'leave' });
      this.#clearTimer('autoJoin');
      this.#endCall();
      this.#line(TEXT.reported);
      this.#setStatus(TEXT.reported);
      this.#afterCall(TEXT.reported, TEXT.reportedIdle);
    });
  }

  /** The 18+ confirmation was given or taken back: Start follows it. */
  confirmationChanged() {
    this.#run(() => {});
  }

  setAutoNext(on) {
    this.#autoNext = Boolean(on);
  }

  setHideIp(on) {
    this.#run(() => {
      this.#hideIp = Boolean(on);
      this.#checkHideIp();
      // An early offer made for the other route may wait at the server: wait anew.
      if (!this.#text && this.#phase === 'waiting' && this.#active && !this.#call && this.#send({ type: 'leave' })) {
        this.#join();
      }
      // A running call keeps the route it has; a new peer connection is needed to change it.
      if (this.#call) this.#flash(on ? t('client.hide_ip_on_next_call') : t('client.hide_ip_off_next_call'));
    });
  }

  /** The user turned the camera or microphone on or off: tell the stranger. */
  localMediaChanged() {
    this.#run(() => this.#sendMediaState());
  }

  /** The offer of the call to come, made while waiting: handed to the server for this wait. */
  earlyOffer(sdp) {
    return !this.#text && this.#phase === 'waiting' && this.#call === null && this.#send({ type: 'early_offer', sdp });
  }

  /** A short message over the status line (a chat line that could not be sent, say). */
  notify(text) {
    this.#run(() => this.#flash(text));
  }

  // ------------------------------------------------------------ the call

  /** The call was opened without WebRTC (this browser has none): text only. */
  videoUnsupported() {
    this.#run(() => this.#flash(TEXT.noVideoCalls));
  }

  /** The peer connection's connectionState changed. */
  peerState(state) {
    this.#run(() => {
      const change = this.#call ? this.#call.peerChanged(state) : null;
      if (!change) return;
      if (change.phase === 'connected') this.#clearTimer('connectHint');
      this.#phase = change.phase;
      this.#setStatus(change.status);
    });
  }

  /** Nothing has come from the stranger for a while (`stalled`), or it flows again. */
  callHealth(stalled) {
    this.#run(() => {
      const status = this.#call ? this.#call.healthChanged(stalled) : null;
      if (status) this.#setStatus(status);
    });
  }

  /** The stranger's tracks changed: `video` is true when there is a picture to show. */
  remoteVideo(video) {
    this.#run(() => {
      if (this.#call) this.#call.remoteVideo = Boolean(video);
    });
  }

  // ------------------------------------------------------------ the socket

  /** "connecting" | "connected" | "reconnecting" | "closed" */
  socketStatus(status) {
    this.#run(() => {
      this.#socket = status;
    });
  }

  socketOpen({ reconnected }) {
    this.#run(() => {
      // A call that kept playing through the drop: ask the server for its room back (the
      // stranger does the same); if the call died meanwhile, look for someone new instead.
      if (this.#resuming !== null) {
        // Also a call that is recovering from an outage: the stranger is still there.
        if (this.#call && this.#call.everConnected) {
          this.#send(this.#call.resume(this.#resuming, this.#text));
          return;
        }
        this.#endCall();
      }
      // After a drop the server has forgotten us: queue again if the user still wants to.
      if (this.#active && this.#mediaReady && !this.#call && this.#timers.autoJoin === null) this.#join();
      else if (!this.#active && reconnected) this.#setStatus(TEXT.idle);
      if (reconnected) this.#flash(TEXT.connectedServer, RECONNECTED_MS);
    });
  }

  /** The socket went away; `code` 1012 is a server restart, anything else the network. */
  socketDown({ code } = {}) {
    this.#run(() => {
      // A call that was up does not need the server: keep it going and ask for the room back
      // once signaling is up again (after a restart the stranger does the same).
      if (this.#call && this.#call.everConnected) {
        this.#resuming = this.#call.room;
        this.#resumeReason = code === 1012 ? 'restart' : 'network';
        // A text chat needs the server to go on; a call goes on browser to browser.
        this.#setStatus(this.#call.flowsWithoutServer(this.#text) ? TEXT.callGoesOn : TEXT.interrupted);
        return;
      }
      // The server ended our room when the socket went, and the stranger was told.
      if (this.#call) {
        this.#endCall();
        this.#line(TEXT.lostServerLine);
      }
      this.#phase = this.#active ? 'waiting' : 'idle';
      this.#setStatus(this.#active ? TEXT.lostServer : TEXT.reconnecting);
    });
  }

  // ------------------------------------------------------------ server messages

  /** A message from the server (welcome, online, waiting, matched, resumed, left, media, error). */
  receive(message) {
    const handlers = {
      welcome: () => this.#onWelcome(message),
      online: () => this.#onOnline(message.count, message.modes),
      waiting: () => this.#onWaiting(),
      matched: () => this.#onMatched(message),
      resumed: () => this.#onResumed(message),
      left: () => this.#onLeft(message),
      media: () => this.#onMedia(message),
      error: () => this.#onError(message),
    };
    const handler = handlers[message.type];
    if (handler) this.#run(handler);
  }

  #onWelcome(message) {
    this.#takeServers(message.iceServers);
    this.#welcomed = true;
    this.#onOnline(message.online, message.modes);
    this.#checkHideIp();
  }

  /** The STUN and TURN servers a message gives, if it gives any (and whether there is a relay). */
  #takeServers(iceServers) {
    if (Array.isArray(iceServers)) this.#iceServers = iceServers;
    this.#turnOffered = offersTurn(this.#iceServers);
  }

  /** The online count, and (from servers that say it) how many are in each mode. */
  #onOnline(count, modes) {
    this.#online = onlineText(count, modes) ?? this.#online;
  }

  #onWaiting() {
    // A late "waiting" after Stop or after a match must not undo either.
    if (!this.#active || this.#call) return;
    this.#phase = 'waiting';
    this.#setStatus(TEXT.looking);
    // The server has us waiting (a `matched` that follows at once comes with this answer).
    this.#makeAhead('looking');
  }

  #onMatched(message) {
    const m = readMatched(message);
    // We sent leave before this crossed it on the wire: the server ends that room.
    if (!m || !this.#active) return;
    // Fresh relay credentials for this call (those in `welcome` may have run out).
    this.#takeServers(message.iceServers);
    this.#beginCall(m);
    // Shown to get this room back after a server restart; the stranger has its own.
    if (this.#call && m.proof !== null) this.#call.proof = m.proof;
  }

  #onResumed(message) {
    // Ours after we asked, or the stranger's: back on a new connection.
    if (!this.#isCurrent(message)) return;
    // Only a server restart leaves every address as it was.
    const networkChanged = this.#resuming !== message.room || this.#resumeReason === 'network';
    this.#resuming = null;
    this.#emit({ type: 'signalingRestored', networkChanged });
    this.#setStatus(this.#text ? TEXT.textConnected : this.#call.resumedStatus(this.#phase));
  }

  #onLeft(message) {
    if (!this.#isCurrent(message)) return; // a room we already left
    const wasReporting = this.#reporting;
    this.#endCall();
    this.#line(TEXT.strangerLeft);
    if (wasReporting) this.#line(TEXT.reportGone);
    this.#setStatus(TEXT.strangerLeft);
    this.#afterCall(TEXT.strangerLeft, null);
  }

  #onMedia(message) {
    if (this.#isCurrent(message)) this.#call.strangerMedia(message);
  }

  #onError(message) {
    const text = typeof message.message === 'string' && message.message ? message.message : t('client.request_refused');
    if (message.code === 'banned') {
      this.#banned(message);
    } else if (message.code === 'rate_limited') {
      // Sent once per run of dropped messages; still, never nag more than every 3 s.
      this.#status.flashSeldom(TEXT.rateLimited, RATE_LIMIT_NOTICE_MS);
    } else {
      this.#emit({ type: 'log', text: `strangers: server refused a message: ${message.code} ${text}` });
      this.#flash(t('client.server_refused', { reason: text }));
    }
  }

  // ------------------------------------------------------------ what the page shows

  /** Everything the page shows that depends on the session (display.js). */
  view() {
    return sessionView({
      phase: this.#phase,
      status: this.#status.shown,
      call: this.#call,
      active: this.#active,
      mediaReady: this.#mediaReady,
      mediaProblem: this.#mediaProblem,
      banText: this.#ban ? this.#ban.text(this.#clock.now()) : '',
      startable: this.#startable(),
      pauseNotice: this.#pauseNotice,
      text: this.#text,
      reporting: this.#reporting,
      // Offered with a relay; and kept visible while it is on without one, to turn it off.
      // A text chat has no call to hide.
      hideIpOffered: !this.#text && (this.#turnOffered || this.#hideIp),
      socket: this.#socket,
      online: this.#online,
    });
  }

  // ------------------------------------------------------------ transitions

  /** Enters (or re-enters) the queue. */
  #join() {
    this.#clearTimer('autoJoin');
    if (this.#ban) return; // the server would only refuse again
    if (this.#hidingWithoutRelay()) {
      this.#checkHideIp(); // stop looking, and say why
      return;
    }
    this.#phase = 'waiting';
    const join = { type: 'join', interests: this.#interests };
    // Video is what a join without a mode asks for.
    if (this.#text) join.mode = 'text';
    if (this.#lang) join.lang = this.#lang;
    if (this.#send(this.#offersAhead(join))) {
      this.#setStatus(TEXT.looking);
      this.#makeAhead('prepare');
    }
    // Not connected yet: socketOpen joins once the socket is up.
    else this.#setStatus(this.#socket === 'connecting' ? TEXT.connectingServer : TEXT.reconnecting);
  }

  /** `message` (a join or next), saying we take a stranger's early offer in `matched`, if we do. */
  #offersAhead(message) {
    if (this.#ahead) message.ahead = true;
    return message;
  }

  /**
   * The next call's connection is to be made, with the route it will take: `prepare` when
   * we ask for a stranger, `looking` once the server has us waiting. Never for a text chat.
   */
  #makeAhead(type) {
    if (!this.#text) this.#emit({ type, iceServers: this.#iceServers, relayOnly: this.#hideIp });
  }

  /** Opens the call (or the text chat, up as soon as it is matched) `matched` paired us in (readMatched). */
  #beginCall({ room, role, common, sameLang, offer, offered }) {
    this.#endCall();
    this.#emit({ type: 'clearLog' });
    const text = this.#text;
    // Fails closed: with Hide my IP on and no relay, the call gathers no candidate at all
    // rather than our own addresses. A text chat has no peer connection.
    const relayOnly = !text && this.#hideIp;
    this.#call = new CallRecord(room, role, { relayOnly, text });
    const iceServers = text ? [] : this.#iceServers;
    const begin = { type: 'beginCall', room, role, common, sameLang, iceServers, relayOnly };
    this.#emit(text ? begin : { ...begin, offer, offered });
    this.#phase = text ? 'connected' : 'connecting';
    this.#setStatus(text ? TEXT.textConnected : TEXT.found);
    this.#line(TEXT.talking);
    if (text) return;
    this.#setTimer('connectHint', () => {
      if (this.#phase !== 'connecting') return;
      this.#setStatus(relayOnly ? TEXT.stillConnectingRelay : TEXT.stillConnecting);
    }, CONNECT_HINT_MS);
    // The stranger assumes camera and microphone are on until told otherwise.
    const media = this.#localMedia();
    if (!media.video || !media.audio) this.#sendMediaState();
  }

  /** Start may be pressed: not while looking or banned, nor before the 18+ confirmation. */
  #startable() {
    return !this.#active && this.#ban === null && !this.#hidingWithoutRelay() && this.#confirmed();
  }

  /** Hide my IP is on but the server has no relay: no call may start. */
  #hidingWithoutRelay() {
    // A text chat sends no address to the stranger: nothing to hide.
    return !this.#text && this.#hideIp && this.#welcomed && !this.#turnOffered;
  }

  /** The relay offer or the checkbox changed: say why calls are off, or undo it. */
  #checkHideIp() {
    if (this.#hidingWithoutRelay()) {
      // Queued before we knew there was no relay: leave the queue (a call already running
      // is relay-only, so it shows nothing of ours).
      if (this.#active && !this.#call) this.#deactivate(true);
      if (!this.#call) this.#setStatus(TEXT.hideIpNoRelay);
    } else if (this.#status.base === TEXT.hideIpNoRelay) {
      this.#setStatus(TEXT.idle);
    }
  }

  /** Closes the current call (if any) and forgets all of it; `next`: another one comes. */
  #endCall(next = false) {
    this.#resuming = null;
    this.#clearTimer('connectHint');
    this.#reporting = false;
    if (this.#call === null) return;
    this.#call = null;
    this.#emit(next ? { type: 'endCall', next } : { type: 'endCall' });
  }

  /** After a report or a stranger leaving: pause, then look again (Auto-next), or go idle. */
  #afterCall(pauseNotice, idleStatus) {
    if (!this.#autoNext || !this.#active) {
      this.#deactivate(false);
      if (idleStatus) this.#setStatus(idleStatus);
      return;
    }
    this.#pauseNotice = pauseNotice;
    this.#phase = 'idle';
    this.#setTimer('autoJoin', () => {
      if (this.#active && !this.#call) this.#join();
    }, AUTO_NEXT_DELAY_MS);
  }

  /**
   * The one way out of looking and talking (Stop, the end of a call without Auto-next, a
   * ban): no automatic way back into the queue until the next Start. `leave` tells the
   * server to end our room or queue place.
   */
  #deactivate(leave) {
    this.#active = false;
    this.#generation += 1;
    this.#clearTimer('autoJoin');
    if (leave) this.#send({ type: 'leave' });
    this.#endCall();
    this.#emit({ type: 'idle' });
    this.#phase = 'idle';
  }

  #banned(message) {
    this.#ban = new Ban(message, this.#clock.now());
    // Without a time the page says only that matching is refused, in its language; the
    // server's reason (in English) goes to the console.
    if (!this.#ban.timed && typeof message.message === 'string') {
      this.#emit({ type: 'log', text: `strangers: banned: ${message.message}` });
    }
    // Stop looking, and stop every automatic way back into the queue (auto-next, a
    // reconnect) until the ban is over; Start stays off until then too.
    this.#deactivate(this.#call !== null);
    this.#checkBan();
  }

  /** Keeps the minutes shown up to date and lifts the ban when its time is up. */
  #checkBan() {
    if (!this.#ban) return;
    if (this.#ban.left(this.#clock.now()) <= 0) {
      this.#ban = null;
      this.#clearTimer('ban');
      this.#setStatus(TEXT.banOver);
      return;
    }
    this.#setStatus(this.#ban.text(this.#clock.now()));
    this.#setTimer('ban', () => this.#checkBan(), this.#ban.refreshIn(this.#clock.now()));
  }

  #sendMediaState() {
    if (!this.#call) return;
    const { video, audio } = this.#localMedia();
    this.#send({ type: 'media', room: this.#call.room, video, audio });
  }

  #isCurrent(message) {
    return this.#call !== null && message.room === this.#call.room;
  }

  // ------------------------------------------------------------ status line

  /** Sets the lasting status line (and drops any transient message it replaces). */
  #setStatus(text) {
    // While matching is refused the ban is the lasting status, whatever else happens
    // (a reconnect, say); transient messages can still show over it for a moment.
    this.#status.set(this.#ban ? this.#ban.text(this.#clock.now()) : text);
  }

  /** Shows a message for a few seconds, then goes back to the lasting status. */
  #flash(text, ms = TRANSIENT_STATUS_MS) {
    this.#status.flash(text, ms);
  }

  #line(text) {
    this.#emit({ type: 'line', text });
  }

  // ------------------------------------------------------------ plumbing

  #setTimer(name, fn, ms) {
    this.#clearTimer(name);
    this.#timers[name] = this.#clock.setTimeout(() => {
      this.#timers[name] = null;
      this.#run(fn);
    }, ms);
  }

  #clearTimer(name) {
    if (this.#timers[name] === null) return;
    this.#clock.clearTimeout(this.#timers[name]);
    this.#timers[name] = null;
  }

  #emit(command) {
    this.#queue.push(command);
  }

  /**
   * Runs one change of state, then gives its commands and renders. A command that calls
   * back into the session (say videoUnsupported() while a call is opened) is run at once,
   * its own commands joining the queue; the page is rendered once, at the end.
   */
  #run(change) {
    change();
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#queue.length) this.#command(this.#queue.shift());
    } finally {
      this.#busy = false;
      this.#queue = [];
    }
    this.#render(this.view());
  }
}
