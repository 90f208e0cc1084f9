// The session's record of its current call or text chat: what a `matched` says of it, its
// room, role, route and proof, the peer connection's state, stalls and the stranger's camera
// and microphone, and the phase and status line each change of them calls for; and whether
// the servers a call is given include a relay. Plain data: session.js decides what happens,
// call.js runs the peer connection.

import { TEXT } from './words.js';

/** What the session knows of one call (or text chat). */
export class CallRecord {
  /**
   * @param {string} room
   * @param {'offerer'|'answerer'} role
   * @param {{relayOnly?: boolean, text?: boolean}} [o]  `relayOnly`: Hide my IP's route;
   *   `text`: a text chat, up as soon as it is matched (no peer connection to wait for)
   */
  constructor(room, role, { relayOnly = false, text = false } = {}) {
    this.room = room;
    this.role = role;
    this.relayOnly = relayOnly;
    /** The peer connection's connectionState (a text chat's is "connected" from the start). */
    this.peer = text ? 'connected' : 'new';
    /**
     * Connected once: from then on it is recovered, never given up (and a text chat is
     * resumed after a server restart like a call that was up).
     */
    this.everConnected = text;
    /** Nothing comes from the stranger (call.js watches the incoming packets). */
    this.stalled = false;
    this.remoteVideo = false;
    /** What the stranger told us of their camera and microphone (true = on). */
    this.remoteMedia = { video: true, audio: true };
    /** Our proof of membership from `matched`, for a `resume` after a restart. */
    this.proof = null;
  }

  /**
   * The peer connection's connectionState is now `state`: the `{phase, status}` it calls
   * for, or null when neither changes.
   */
  peerChanged(state) {
    this.peer = state;
    if (state === 'connected') {
      this.everConnected = true;
      return { phase: 'connected', status: this.stalled ? TEXT.interrupted : TEXT.connected };
    }
    if (state === 'disconnected' || state === 'failed') {
      // A call that was up is recovered for as long as the stranger is there: never "failed".
      const final = state === 'failed' && !this.everConnected;
      return { phase: 'connecting', status: final ? TEXT.failed : TEXT.interrupted };
    }
    return null;
  }

  /** Nothing comes from the stranger (`stalled`), or it flows again: the status it calls for, or null. */
  healthChanged(stalled) {
    this.stalled = Boolean(stalled);
    if (this.stalled) return TEXT.interrupted;
    return this.peer === 'connected' ? TEXT.connected : null;
  }

  /** Whether the call goes on browser to browser while signaling is down (a text chat never does). */
  flowsWithoutServer(text) {
    return !text && this.peer === 'connected' && !this.stalled;
  }

  /** The status once the room is back on signaling, the session being in `phase`. */
  resumedStatus(phase) {
    if (phase === 'connected' && !this.stalled) return TEXT.connected;
    return this.everConnected ? TEXT.interrupted : TEXT.found;
  }

  /** The `resume` that asks for `room` back after a drop, showing our proof (a text chat says so). */
  resume(room, text) {
    const message = { type: 'resume', room, proof: this.proof };
    if (text) message.mode = 'text';
    return message;
  }

  /** The stranger's `media` message: what it says of their camera and microphone, if well formed. */
  strangerMedia(message) {
    if (typeof message.video !== 'boolean' || typeof message.audio !== 'boolean') return;
    this.remoteMedia = { video: message.video, audio: message.audio };
  }
}

/**
 * What a `matched` says of the call it opens: `{room, role, common, sameLang, offer, offered,
 * proof}` (`offer`: the stranger's early offer, for an answerer; `offered`: ours went), or
 * null when it names no room or role.
 */
export function readMatched(message) {
  const { room, role } = message;
  if (typeof room !== 'string' || (role !== 'offerer' && role !== 'answerer')) return null;
  return {
    room,
    role,
    common: Array.isArray(message.common) ? message.common : [],
    sameLang: message.same_lang === true,
    offer: role === 'answerer' && typeof message.offer === 'string' ? message.offer : null,
    offered: message.offered === true,
    proof: typeof message.proof === 'string' ? message.proof : null,
  };
}

/** Whether the server hands out a TURN relay (a turn: or turns: URL). */
export function offersTurn(iceServers) {
  return iceServers.some((server) => {
    if (!server || typeof server !== 'object') return false;
    const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
    return urls.some((url) => typeof url === 'string' && /^turns?:/i.test(url.trim()));
  });
}
