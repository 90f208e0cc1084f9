// The session logic: what the page is doing (idle, waiting, in a call, banned…), how user
// actions, server messages and socket changes move it on, and what the status line, the
// video notice and the controls say in each state. No DOM and no browser globals: time,
// timers and the signaling send are handed in, and everything else the page must do comes
// out as commands. It runs the same in a browser and under node.
//
//   idle ──Start──► waiting ──matched──► connecting ──pc connected──► connected
//    ▲                 ▲                      │                          │
//    └──── Stop ───────┴──── Next / left ─────┴──────────────────────────┘

import { CONNECTION_LABELS, TEXT } from './words.js';
import { t } from './i18n.js';

const AUTO_NEXT_DELAY_MS = 1000;
const CONNECT_HINT_MS = 15000;
const TRANSIENT_STATUS_MS = 4000;
const RATE_LIMIT_NOTICE_MS = 3000;
const MEDIA_PROBLEM_MS = 6000;
const RECONNECTED_MS = 2000;
// A ban without retry_after: keep Start off this long before letting the user try again.
const BAN_FALLBACK_S = 60;
// How often the "Try again in about N minutes" text is brought up to date.
const BAN_REFRESH_MS = 30000;
const REPORT_REASONS = ['nudity', 'harassment', 'spam', 'under_18', 'other'];
const BACKOFF_START_MS = 300;
const BACKOFF_CAP_MS = 10_000;


/**
 * How long to wait before reconnect attempt `attempt` (0 for the first after a drop):
 * exponential backoff from 300 ms, capped at 10 s, with "equal jitter" (half fixed, half
 * random) so a whole crowd dropped by a server restart does not come back in one instant.
 * @param {number} attempt
 * @param {() => number} random  a number in [0, 1), like Math.random
 */
export function reconnectDelay(attempt, random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** Math.max(0, attempt));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** Whether the server hands out a TURN relay (a turn: or turns: URL). */
export function offersTurn(iceServers) {
  return iceServers.some((server) => {
    if (!server || typeof server !== 'object') return false;
    const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
    return urls.some((url) => typeof url === 'string' && /^turns?:/i.test(url.trim()));
  });
}

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
  #timers = { autoJoin: null, connectHint: null, transient: null, ban: null };

  /** "idle" | "waiting" | "connecting" | "connected" */
  #phase = 'idle';
  /** The user pressed Start and has not pressed Stop (we want to be matched). */
  #active = false;
  /** {room, role, relayOnly, peer, remoteVideo, remoteMedia} of the current call, or null. */
  #call = null;
  /** The room of a call that went on while signaling reconnected; asked back on reconnect. */
  #resuming = null;
  /** Refused matching: {until: ms, timed}. */
  #ban = null;
  #rateLimitShownAt = -Infinity;
  #mediaReady = false;
  /** Why we have no camera or microphone, for the notice; "" when all is well. */
  #mediaProblem = '';
  /** Bumped whenever a Start is over, so a late media answer cannot join. */
  #generation = 0;
  /** What the idle-but-active pause before auto-next shows on the video. */
  #pauseNotice = TEXT.strangerLeft;
  #baseStatus = TEXT.idle;
  #shownStatus = TEXT.idle;
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
  }) {
    this.#clock = clock;
    this.#send = send;
    this.#localMedia = localMedia;
    this.#command = command;
    this.#render = render;
    this.#interests = interests;
    this.#hideIp = hideIp;
    this.#autoNext = autoNext;
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
      if (this.#active || this.#ban || this.#hidingWithoutRelay()) return;
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
      if (this.#send(this.#offersAhead({ type: 'next' }))) this.#prepare();
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
      if (!this.#call) return;
      this.#call.peer = state;
      if (state === 'connected') {
        this.#clearTimer('connectHint');
        this.#call.everConnected = true;
        this.#phase = 'connected';
        this.#setStatus(this.#call.stalled ? TEXT.interrupted : TEXT.connected);
      } else if (state === 'disconnected' || state === 'failed') {
        this.#phase = 'connecting';
        // A call that was up is recovered for as long as the stranger is there: never "failed".
        const final = state === 'failed' && !this.#call.everConnected;
        this.#setStatus(final ? TEXT.failed : TEXT.interrupted);
      }
    });
  }

  /** Nothing has come from the stranger for a while (`stalled`), or it flows again. */
  callHealth(stalled) {
    this.#run(() => {
      if (!this.#call) return;
      this.#call.stalled = Boolean(stalled);
      if (stalled) this.#setStatus(TEXT.interrupted);
      else if (this.#call.peer === 'connected') this.#setStatus(TEXT.connected);
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
          const resume = { type: 'resume', room: this.#resuming, proof: this.#call.proof };
          if (this.#text) resume.mode = 'text';
          this.#send(resume);
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
        const flowing = !this.#text && this.#call.peer === 'connected' && !this.#call.stalled;
        this.#setStatus(flowing ? TEXT.callGoesOn : TEXT.interrupted);
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
      online: () => this.#onOnline(message.count),
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
    if (Array.isArray(message.iceServers)) this.#iceServers = message.iceServers;
    this.#turnOffered = offersTurn(this.#iceServers);
    this.#welcomed = true;
    this.#onOnline(message.online);
    this.#checkHideIp();
  }

  #onOnline(count) {
    if (Number.isInteger(count) && count >= 0) this.#online = t('client.online', { count });
  }

  #onWaiting() {
    // A late "waiting" after Stop or after a match must not undo either.
    if (!this.#active || this.#call) return;
    this.#phase = 'waiting';
    this.#setStatus(TEXT.looking);
    // The server has us waiting (a `matched` that follows at once comes with this answer).
    this.#looking();
  }

  #onMatched(message) {
    const role = message.role === 'offerer' || message.role === 'answerer' ? message.role : null;
    if (typeof message.room !== 'string' || !role) return;
    // We sent leave before this crossed it on the wire: the server ends that room.
    if (!this.#active) return;
    // Fresh relay credentials for this call (those in `welcome` may have run out).
    if (Array.isArray(message.iceServers)) {
      this.#iceServers = message.iceServers;
      this.#turnOffered = offersTurn(this.#iceServers);
    }
    const offer = role === 'answerer' && typeof message.offer === 'string' ? message.offer : null;
    this.#beginCall(message.room, role, message.common, message.same_lang === true, {
      offer,
      offered: message.offered === true,
    });
    // Shown to get this room back after a server restart; the stranger has its own.
    if (this.#call && typeof message.proof === 'string') this.#call.proof = message.proof;
  }

  #onResumed(message) {
    // Ours after we asked, or the stranger's: back on a new connection.
    if (!this.#isCurrent(message)) return;
    // Only a server restart leaves every address as it was.
    const networkChanged = this.#resuming !== message.room || this.#resumeReason === 'network';
    this.#resuming = null;
    this.#emit({ type: 'signalingRestored', networkChanged });
    const call = this.#call;
    const flowing = this.#phase === 'connected' && !call.stalled;
    if (this.#text) this.#setStatus(TEXT.textConnected);
    else this.#setStatus(flowing ? TEXT.connected : call.everConnected ? TEXT.interrupted : TEXT.found);
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
    if (!this.#isCurrent(message)) return;
    if (typeof message.video !== 'boolean' || typeof message.audio !== 'boolean') return;
    this.#call.remoteMedia = { video: message.video, audio: message.audio };
  }

  #onError(message) {
    const text = typeof message.message === 'string' && message.message ? message.message : t('client.request_refused');
    if (message.code === 'banned') {
      this.#banned(message);
    } else if (message.code === 'rate_limited') {
      // Sent once per run of dropped messages; still, never nag more than every 3 s.
      const now = this.#clock.now();
      if (now - this.#rateLimitShownAt < RATE_LIMIT_NOTICE_MS) return;
      this.#rateLimitShownAt = now;
      this.#flash(TEXT.rateLimited, RATE_LIMIT_NOTICE_MS);
    } else {
      this.#emit({ type: 'log', text: `strangers: server refused a message: ${message.code} ${text}` });
      this.#flash(t('client.server_refused', { reason: text }));
    }
  }

  // ------------------------------------------------------------ what the page shows

  /** Everything the page shows that depends on the session. */
  view() {
    const inRoom = this.#call !== null;
    const notice = this.#notice();
    return {
      state: this.#phase,
      status: this.#shownStatus,
      notice,
      remoteMuted: inRoom && this.#call.remoteMedia.audio === false,
      // Without camera or microphone the stranger gets no picture of us: keep saying so for
      // the whole call, even once their picture covers the notice.
      selfUnseen: inRoom && this.#mediaProblem !== '',
      controls: {
        // Start: only when not already looking or talking, not while matching is refused,
        // and not while Hide my IP is on with no relay to hide behind.
        start: !this.#active && this.#ban === null && !this.#hidingWithoutRelay(),
        // Next: whenever we are looking or talking (it also skips the auto-next pause).
        next: this.#active && this.#mediaReady,
        stop: this.#active || inRoom,
        // Chat and Report: only in a call (there is someone to talk to or report).
        chat: inRoom,
      },
      reporting: this.#reporting,
      // Offered with a relay; and kept visible while it is on without one, to turn it off.
      // A text chat has no call to hide.
      hideIpOffered: !this.#text && (this.#turnOffered || this.#hideIp),
      connection: { status: this.#socket, label: CONNECTION_LABELS[this.#socket] || '' },
      online: this.#online,
    };
  }

  /** The overlay on the remote video: what is happening while there is no picture. */
  #notice() {
    const call = this.#call;
    const cameraOff = call !== null && call.remoteMedia.video === false;
    let main = '';
    if (this.#phase === 'idle') {
      // Idle but active: the short pause before auto-next joins again.
      if (this.#ban) main = this.#banText();
      else main = this.#active ? this.#pauseNotice : TEXT.idle;
    } else if (this.#phase === 'waiting') {
      main = this.#mediaReady ? TEXT.looking : TEXT.starting;
    } else if (this.#text) {
      // No picture to cover: the frame says what is going on.
      main = this.#phase === 'connecting' ? TEXT.connecting : TEXT.textConnected;
    } else if (this.#phase === 'connecting') {
      main = TEXT.connecting;
    } else if (call && call.stalled) {
      main = TEXT.interrupted;
    } else if (cameraOff) {
      main = TEXT.remoteCameraOff;
    } else if (call && !call.remoteVideo) {
      main = TEXT.noRemoteVideo;
    }
    const showingVideo = this.#phase === 'connected' && main === '';
    return {
      main,
      // Still connecting, but already told the stranger's camera is off.
      info: this.#phase === 'connecting' && cameraOff ? TEXT.remoteCameraOff : '',
      // Our own media problem stays visible until the stranger's picture covers it.
      sub: showingVideo ? '' : this.#mediaProblem,
    };
  }

  /** "Try again in about N minutes", counted from now (the server's words go to the console). */
  #banText() {
    const ban = this.#ban;
    if (!ban) return '';
    if (!ban.timed) return TEXT.banned;
    const minutes = Math.max(1, Math.ceil((ban.until - this.#clock.now()) / 60000));
    return t('client.banned_for', { count: minutes });
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
      this.#prepare();
    }
    // Not connected yet: socketOpen joins once the socket is up.
    else this.#setStatus(this.#socket === 'connecting' ? TEXT.connectingServer : TEXT.reconnecting);
  }

  /** `message` (a join or next), saying we take a stranger's early offer in `matched`, if we do. */
  #offersAhead(message) {
    if (this.#ahead) message.ahead = true;
    return message;
  }

  /** We asked for a stranger: the next call's connection is made (never for a text chat). */
  #prepare() {
    if (!this.#text) this.#emit({ type: 'prepare', ...this.#route() });
  }

  /** A wait goes on: the next call's connection is made ready for it (not for a text chat). */
  #looking() {
    if (!this.#text) this.#emit({ type: 'looking', ...this.#route() });
  }

  /** What the next call's connection is made with. */
  #route() {
    return { iceServers: this.#iceServers, relayOnly: this.#hideIp };
  }

  #beginCall(room, role, common, sameLang, { offer = null, offered = false } = {}) {
    this.#endCall();
    this.#emit({ type: 'clearLog' });
    if (this.#text) {
      this.#beginTextChat(room, role, common, sameLang);
      return;
    }
    // Fails closed: with Hide my IP on and no relay, the call gathers no candidate at all
    // rather than our own addresses.
    const relayOnly = this.#hideIp;
    this.#call = {
      room,
      role,
      relayOnly,
      peer: 'new',
      /** Connected once: from then on it is recovered, never given up. */
      everConnected: false,
      /** Nothing comes from the stranger (call.js watches the incoming packets). */
      stalled: false,
      remoteVideo: false,
      /** What the stranger told us of their camera and microphone (true = on). */
      remoteMedia: { video: true, audio: true },
      /** Our proof of membership from `matched`, for a `resume` after a restart. */
      proof: null,
    };
    const iceServers = this.#iceServers;
    common = Array.isArray(common) ? common : [];
    this.#emit({ type: 'beginCall', room, role, common, sameLang, iceServers, relayOnly, offer, offered });
    this.#phase = 'connecting';
    this.#setStatus(TEXT.found);
    this.#line(TEXT.talking);
    this.#setTimer('connectHint', () => {
      if (this.#phase !== 'connecting') return;
      this.#setStatus(relayOnly ? TEXT.stillConnectingRelay : TEXT.stillConnecting);
    }, CONNECT_HINT_MS);
    // The stranger assumes camera and microphone are on until told otherwise.
    const media = this.#localMedia();
    if (!media.video || !media.audio) this.#sendMediaState();
  }

  /** A text chat is up as soon as it is matched: no camera, no peer connection to wait for. */
  #beginTextChat(room, role, common, sameLang) {
    this.#call = {
      room,
      role,
      relayOnly: false,
      peer: 'connected',
      // Resumed after a server restart like a call that was up (the stranger does the same).
      everConnected: true,
      stalled: false,
      remoteVideo: false,
      remoteMedia: { video: true, audio: true },
      proof: null,
    };
    common = Array.isArray(common) ? common : [];
    this.#emit({ type: 'beginCall', room, role, common, sameLang, iceServers: [], relayOnly: false });
    this.#phase = 'connected';
    this.#setStatus(TEXT.textConnected);
    this.#line(TEXT.talking);
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
    } else if (this.#baseStatus === TEXT.hideIpNoRelay) {
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
    const seconds = Number.isFinite(message.retry_after) && message.retry_after >= 0 ? message.retry_after : null;
    this.#ban = {
      until: this.#clock.now() + (seconds ?? BAN_FALLBACK_S) * 1000,
      timed: seconds !== null,
    };
    // Without a time the page says only that matching is refused, in its language; the
    // server's reason (in English) goes to the console.
    if (seconds === null && typeof message.message === 'string') {
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
    const left = this.#ban.until - this.#clock.now();
    if (left <= 0) {
      this.#ban = null;
      this.#clearTimer('ban');
      this.#setStatus(TEXT.banOver);
      return;
    }
    this.#setStatus(this.#banText());
    this.#setTimer('ban', () => this.#checkBan(), Math.min(left, BAN_REFRESH_MS));
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
    if (this.#ban) text = this.#banText();
    // Re-stating the same status (say a "waiting" after our own join) must not cut
    // short a message being shown, such as why the camera is unavailable.
    if (text === this.#baseStatus && this.#timers.transient !== null) return;
    this.#baseStatus = text;
    this.#clearTimer('transient');
    this.#shownStatus = text;
  }

  /** Shows a message for a few seconds, then goes back to the lasting status. */
  #flash(text, ms = TRANSIENT_STATUS_MS) {
    this.#shownStatus = text;
    this.#setTimer('transient', () => {
      this.#shownStatus = this.#baseStatus;
    }, ms);
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
