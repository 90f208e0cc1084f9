// One WebRTC call with one stranger: an RTCPeerConnection negotiated with the
// MDN "perfect negotiation" pattern over the signaling channel.
// https://developer.mozilla.org/en-US/docs/Web/API/WebRTC_API/Perfect_negotiation

// Every RTCPeerConnection the app has made and not yet closed (for debug()).
const openPeerConnections = new Set();

export function openPeerConnectionCount() {
  for (const pc of openPeerConnections) {
    if (pc.signalingState === 'closed') openPeerConnections.delete(pc);
  }
  return openPeerConnections.size;
}

const MAX_ICE_RESTARTS = 3;
const PC_HANDLERS = [
  'ontrack',
  'onicecandidate',
  'onnegotiationneeded',
  'onconnectionstatechange',
  'oniceconnectionstatechange',
];

function isLive(track) {
  return track.readyState === 'live';
}

export class Call {
  /** @type {RTCPeerConnection|null} */
  pc = null;
  room;
  role;
  /** The answerer is the "polite" peer: it yields when both sides offer at once. */
  polite;
  /** Only relay (TURN) candidates are used: the stranger never sees our address. */
  relayOnly;
  remoteStream = new MediaStream();

  #send;
  #tracker;
  #onRemoteStream;
  #onState;
  #onRemoteMedia;
  #closed = false;
  #makingOffer = false;
  #ignoreOffer = false;
  #settingRemoteAnswerPending = false;
  #pendingCandidates = [];
  // Incoming signaling is applied strictly in arrival order.
  #inbox = Promise.resolve();
  #remoteOfferApplied = false;
  #restarts = 0;
  #restartPending = false;
  // track -> functions removing its listeners
  #trackListeners = new Map();

  /**
   * @param {object} o
   * @param {string} o.room
   * @param {"offerer"|"answerer"} o.role
   * @param {RTCIceServer[]} o.iceServers
   * @param {boolean} [o.relayOnly]  gather relay candidates only ("Hide my IP"): the
   *   stranger then never learns our addresses, only the TURN server's
   * @param {MediaStream|null} o.localStream
   * @param {(msg: object) => void} o.send  sends one signaling message
   * @param {import('./signaling.js').Tracker} o.tracker
   * @param {(stream: MediaStream) => void} [o.onRemoteStream]  a track of the stranger's
   *   arrived: `stream` (this.remoteStream, kept up to date by the call) is for the view to show
   * @param {(state: string) => void} [o.onState]  pc.connectionState changes
   * @param {() => void} [o.onRemoteMedia]  remote tracks appeared, muted, unmuted or ended
   */
  constructor({ room, role, iceServers, relayOnly = false, localStream, send, tracker, onRemoteStream, onState, onRemoteMedia }) {
    this.room = room;
    this.role = role;
    this.polite = role === 'answerer';
    this.relayOnly = Boolean(relayOnly);
    this.#send = send;
    this.#tracker = tracker;
    this.#onRemoteStream = onRemoteStream;
    this.#onState = onState;
    this.#onRemoteMedia = onRemoteMedia;

    this.pc = createPeerConnection(iceServers, relayOnly);
    if (!this.pc) return; // No WebRTC here: the call is text only.
    openPeerConnections.add(this.pc);
    // Handlers first (ontrack above all), then media: adding media is what
    // fires negotiationneeded and starts the offer/answer exchange.
    this.#attachHandlers();
    this.#addLocalMedia(localStream);
  }

  get closed() {
    return this.#closed;
  }

  /** The number of live remote tracks this call holds. */
  remoteTrackCount() {
    return this.remoteStream.getTracks().filter(isLive).length;
  }

  /** True when the stranger is sending video we can show. */
  hasRemoteVideo() {
    return this.remoteStream.getVideoTracks().some((t) => isLive(t) && !t.muted);
  }

  /** Applies an offer, answer or candidate from the stranger. Never throws. */
  handle(message) {
    if (this.#closed || !this.pc || message.room !== this.room) return;
    this.#inbox = this.#inbox
      .then(() => this.#process(message))
      .catch((err) => {
        if (!this.#closed) console.info(`strangers: could not apply the stranger's ${message.type}`, err);
      });
  }

  /** Tears everything down. Safe to call more than once. */
  close() {
    if (this.#closed) return;
    this.#closed = true;

    for (const offs of this.#trackListeners.values()) offs.forEach((off) => off());
    this.#trackListeners.clear();

    const pc = this.pc;
    if (pc) {
      for (const name of PC_HANDLERS) pc[name] = null;
      try {
        pc.close();
      } catch {
        // Already closed.
      }
      openPeerConnections.delete(pc);
    }

    for (const track of this.remoteStream.getTracks()) {
      track.stop();
      this.remoteStream.removeTrack(track);
    }
    this.#pendingCandidates = [];
  }

  #attachHandlers() {
    const pc = this.pc;
    pc.ontrack = (event) => this.#onTrack(event);
    pc.onicecandidate = ({ candidate }) => {
      // Some browsers end a generation with an empty candidate; the wire form of
      // "end of candidates" is null.
      const json = candidate && candidate.candidate ? candidate.toJSON() : null;
      this.#sendMessage({ type: 'candidate', candidate: json });
    };
    pc.onnegotiationneeded = () => this.#negotiate();
    pc.onconnectionstatechange = () => this.#onConnectionState();
    pc.oniceconnectionstatechange = () => {
      if (pc.iceConnectionState === 'failed') this.#restartIce();
    };
  }

  #addLocalMedia(localStream) {
    for (const kind of ['audio', 'video']) {
      const tracks = localStream ? localStream.getTracks().filter((t) => t.kind === kind && isLive(t)) : [];
      try {
        if (tracks.length > 0) {
          for (const track of tracks) this.pc.addTrack(track, localStream);
        } else {
          // Nothing to send, but we still want the stranger's media: without a
          // transceiver the offer would have no m-line for it.
          this.pc.addTransceiver(kind, { direction: 'recvonly' });
        }
      } catch (err) {
        console.info(`strangers: could not add local ${kind}`, err);
      }
    }
  }

  async #negotiate() {
    const pc = this.pc;
    // The offerer always opens with an offer (it always has transceivers), so the
    // polite side waits for it instead of racing it: an opening glare only ends in
    // a rollback, and Chromium was seen to gather no ICE candidates at all for the
    // answer after such a rollback, leaving the call stuck in "new". Skipping is
    // safe: negotiationneeded fires again once we are stable if still needed.
    if (this.polite && !this.#remoteOfferApplied) return;
    try {
      this.#makingOffer = true;
      await pc.setLocalDescription();
      if (this.#closed) return;
      this.#sendDescription();
    } catch (err) {
      if (!this.#closed) console.info('strangers: could not make an offer', err);
    } finally {
      this.#makingOffer = false;
    }
  }

  async #process(message) {
    if (this.#closed) return;
    switch (message.type) {
      case 'offer':
      case 'answer':
        if (typeof message.sdp === 'string') await this.#onDescription(message.type, message.sdp);
        break;
      case 'candidate':
        await this.#onCandidate(message.candidate ?? null);
        break;
      default:
        break;
    }
  }

  async #onDescription(type, sdp) {
    const pc = this.pc;
    const readyForOffer =
      !this.#makingOffer && (pc.signalingState === 'stable' || this.#settingRemoteAnswerPending);
    const offerCollision = type === 'offer' && !readyForOffer;

    // Glare: the impolite peer (offerer) ignores the stranger's offer; the polite
    // one lets setRemoteDescription roll its own offer back.
    this.#ignoreOffer = !this.polite && offerCollision;
    if (this.#ignoreOffer) return;

    this.#settingRemoteAnswerPending = type === 'answer';
    try {
      await pc.setRemoteDescription({ type, sdp });
    } finally {
      this.#settingRemoteAnswerPending = false;
    }
    if (this.#closed) return;
    if (type === 'offer') this.#remoteOfferApplied = true;
    await this.#flushCandidates();

    if (type === 'offer') {
      await pc.setLocalDescription();
      if (this.#closed) return;
      this.#sendDescription();
    }
  }

  async #onCandidate(candidate) {
    // Candidates can outrun the description they belong to: keep them until then.
    if (!this.pc.remoteDescription) {
      this.#pendingCandidates.push(candidate);
      return;
    }
    await this.#addCandidate(candidate);
  }

  async #flushCandidates() {
    const queued = this.#pendingCandidates;
    this.#pendingCandidates = [];
    for (const candidate of queued) {
      if (this.#closed) return;
      await this.#addCandidate(candidate);
    }
  }

  async #addCandidate(candidate) {
    try {
      // No argument means "end of candidates".
      await (candidate ? this.pc.addIceCandidate(candidate) : this.pc.addIceCandidate());
    } catch (err) {
      // Candidates for an offer we ignored are expected to fail.
      if (!this.#ignoreOffer && !this.#closed) console.info('strangers: skipped an ICE candidate', err);
    }
  }

  #sendDescription() {
    const description = this.pc.localDescription;
    if (!description) return;
    this.#sendMessage({ type: description.type, sdp: description.sdp });
  }

  #sendMessage(message) {
    if (this.#closed) return;
    this.#send({ ...message, room: this.room });
  }

  #onTrack({ track }) {
    if (this.#closed) return;
    if (!this.remoteStream.getTrackById(track.id)) this.remoteStream.addTrack(track);
    if (!this.#trackListeners.has(track)) {
      const changed = () => this.#remoteChanged();
      const ended = () => {
        this.#forgetTrack(track);
        changed();
      };
      const t = this.#tracker;
      this.#trackListeners.set(track, [
        t.listen(track, 'mute', changed),
        t.listen(track, 'unmute', changed),
        t.listen(track, 'ended', ended),
      ]);
    }
    if (this.#onRemoteStream) this.#onRemoteStream(this.remoteStream);
    this.#remoteChanged();
  }

  #forgetTrack(track) {
    const offs = this.#trackListeners.get(track);
    if (offs) offs.forEach((off) => off());
    this.#trackListeners.delete(track);
    this.remoteStream.removeTrack(track);
  }

  #remoteChanged() {
    if (!this.#closed && this.#onRemoteMedia) this.#onRemoteMedia();
  }

  #onConnectionState() {
    const state = this.pc.connectionState;
    if (state === 'failed') this.#restartIce();
    else if (state === 'connected') this.#restarts = 0;
    // A new failure after the last restart got going may restart again.
    if (state !== 'failed') this.#restartPending = false;
    if (this.#onState) this.#onState(state);
  }

  #restartIce() {
    // Only the offerer restarts, so the two sides never both do; the restart
    // offer goes out through negotiationneeded like any other.
    if (this.polite || this.#closed || this.#restartPending) return;
    if (this.#restarts >= MAX_ICE_RESTARTS) return;
    this.#restartPending = true;
    this.#restarts += 1;
    try {
      this.pc.restartIce();
    } catch (err) {
      console.info('strangers: ICE restart failed', err);
    }
  }
}

function createPeerConnection(iceServers, relayOnly) {
  if (typeof RTCPeerConnection !== 'function') return null;
  const iceTransportPolicy = relayOnly ? 'relay' : 'all';
  try {
    return new RTCPeerConnection({ iceServers: Array.isArray(iceServers) ? iceServers : [], iceTransportPolicy });
  } catch (err) {
    // A malformed server list should not cost the call: fall back to host candidates.
    // Never when hiding our address, though: without servers a relay-only call cannot
    // connect, but it does not leak the address either.
    console.info('strangers: bad iceServers, trying without', err);
    try {
      return new RTCPeerConnection({ iceTransportPolicy });
    } catch {
      return null;
    }
  }
}
