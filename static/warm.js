// The next call's peer connection, made ahead ("offer ahead"): while we wait for a stranger,
// and during a call for the one after it, a peer connection with our camera and microphone
// attached and its candidates gathered is ready, so a match only has to exchange what
// depends on the stranger. While we wait, its offer is made too and handed to the server
// (`early_offer`): whoever we are paired with gets it in `matched` and answers at once.
//
// OfferAhead decides when the offer is made and sent (no browser globals: it runs under
// node); Warm is the peer connection itself.

import { addLocalMedia, createPeerConnection } from './call.js';

// How long a wait must have lasted before its offer is made: a `matched` that follows our
// join at once (someone was waiting) must find the warm connection still without an offer
// of its own, so it answers without a rollback.
const GRACE_MS = 60;
// The longest the offer is waited on for its candidates before it is sent again with all
// of them (the rest follow, trickled, once there is a room).
const GATHER_MS = 1500;
// Candidates gathered ahead, so the first call of a page pays no gathering either.
const POOL_SIZE = 1;
// A warm connection older than this is made again: its relay allocation was made with
// credentials that run out (10 minutes by default).
export const WARM_MAX_AGE_MS = 4 * 60 * 1000;
// A connection made ahead less than this long ago, with no offer of its own, is not handed
// to a call: its candidates are still being gathered, so it saves the answer nothing, and
// Chromium was seen to give an answer made on a pool still gathering no candidates at all
// (the call stuck in ICE "new"). The call makes a connection of its own instead.
export const WARM_READY_MS = 1000;

/**
 * When the early offer of a wait is made and sent: GRACE_MS after the server said we wait,
 * if we still do, and only for that wait. It is sent as soon as it is set (with the
 * candidates gathered ahead), and once more when the rest are gathered (the server keeps
 * the latest), so a stranger who comes meanwhile still gets one.
 */
export class OfferAhead {
  #clock;
  #makeOffer;
  #fullOffer;
  #send;
  #wait = 0;
  #timer = null;
  #sent = 0;

  /**
   * @param {object} o
   * @param {{setTimeout(fn: () => void, ms: number): any, clearTimeout(id: any): void}} o.clock
   * @param {() => Promise<string|null>} o.makeOffer  the warm connection's offer (with the
   *   candidates it has), or null if there is none
   * @param {() => Promise<string|null>} o.fullOffer  the same offer once its candidates are
   *   gathered, or null if that adds nothing
   * @param {(sdp: string) => boolean} o.send  sends it to the server (as `early_offer`)
   */
  constructor({ clock, makeOffer, fullOffer, send }) {
    this.#clock = clock;
    this.#makeOffer = makeOffer;
    this.#fullOffer = fullOffer;
    this.#send = send;
  }

  /** How many early offers were sent (for the tests' debug()). */
  get sent() {
    return this.#sent;
  }

  /** A wait began (we sent join or next): its offer is made unless it ends first. */
  looking() {
    this.#newWait();
    const wait = this.#wait;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      const offer = (sdp) => sdp && wait === this.#wait && this.#send(sdp) && (this.#sent += 1);
      this.#makeOffer()
        .then((sdp) => offer(sdp) && this.#fullOffer().then(offer))
        .catch((err) => console.info('strangers: no early offer', err));
    }, GRACE_MS);
  }

  /** The wait ended (matched, Stop, the socket went): a late offer is not sent. */
  done() {
    this.#newWait();
  }

  #newWait() {
    this.#wait += 1;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/**
 * Whether the connection made ahead (`warm`, or null) may carry a call on this route at
 * `now`: same "Hide my IP" setting, and either its offer made (the stranger may have it) or
 * old enough to have gathered its candidates (WARM_READY_MS).
 */
export function fitsCall(warm, relayOnly, now) {
  if (!warm || warm.relayOnly !== Boolean(relayOnly)) return false;
  return warm.hasOffer || now - warm.madeAt >= WARM_READY_MS;
}

/** Resolves once `pc` has gathered its candidates, or after `ms`. */
function gathered(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/** One peer connection made ahead of its call. */
export class Warm {
  /** @type {RTCPeerConnection|null} */
  pc;
  relayOnly;
  madeAt;
  /** Candidates gathered so far (as RTCIceCandidate.toJSON(), or null for the end). */
  #candidates = [];
  /** How many of them the offer held when it was read; -1 before. */
  #inOffer = -1;
  #offer = null;
  #taken = false;

  /**
   * @param {object} o
   * @param {RTCIceServer[]} o.iceServers
   * @param {boolean} o.relayOnly
   * @param {MediaStream|null} o.localStream
   * @param {number} o.now  the time (ms) it is made
   */
  constructor({ iceServers, relayOnly, localStream, now }) {
    this.relayOnly = Boolean(relayOnly);
    this.madeAt = now;
    this.pc = createPeerConnection(iceServers, relayOnly, POOL_SIZE);
    if (!this.pc) return;
    this.pc.onicecandidate = ({ candidate }) => {
      this.#candidates.push(candidate && candidate.candidate ? candidate.toJSON() : null);
    };
    addLocalMedia(this.pc, localStream);
  }

  /** Whether its offer has been made (the stranger may then have it already). */
  get hasOffer() {
    return this.#offer !== null;
  }

  /** Sets its offer: the SDP, with the candidates gathered so far (made once). */
  offer() {
    if (!this.#offer) this.#offer = this.#makeOffer();
    return this.#offer;
  }

  /** The offer again once its candidates are gathered (GATHER_MS at most), if it has more. */
  async fullOffer() {
    const pc = this.pc;
    if (!pc || !(await this.offer())) return null;
    await gathered(pc, GATHER_MS);
    if (this.#taken || pc.signalingState !== 'have-local-offer') return null;
    return this.#candidates.length > this.#inOffer ? pc.localDescription.sdp : null;
  }

  async #makeOffer() {
    const pc = this.pc;
    if (!pc || this.#taken) return null;
    await pc.setLocalDescription();
    if (this.#taken || pc.signalingState !== 'have-local-offer') return null;
    this.#inOffer = this.#candidates.length;
    return pc.localDescription.sdp;
  }

  /**
   * Hands the connection to its call, once. `later`: candidates gathered after the first
   * early offer was read, which the stranger may not have had yet.
   * @returns {{pc: RTCPeerConnection|null, later: (object|null)[]}}
   */
  take() {
    this.#taken = true;
    const pc = this.pc;
    this.pc = null;
    if (pc) pc.onicecandidate = null;
    const later = this.#inOffer >= 0 ? this.#candidates.slice(this.#inOffer) : [];
    return { pc, later };
  }

  /** Closes it if no call took it. */
  close() {
    this.#taken = true;
    const pc = this.pc;
    this.pc = null;
    if (!pc) return;
    pc.onicecandidate = null;
    try {
      pc.close();
    } catch {
      // Already closed.
    }
  }
}
