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
// A call ended by Next is closed this much later, off the path to the next one (closing a
// peer connection takes the page's thread for ~16 ms).
const CLOSE_LATER_MS = 300;
// Watching a call that has connected once: how often, how long without a single incoming
// packet counts as stalled, how long a lost connection waits for ICE to find its way back
// before the offerer restarts it, and how long a restart offer may go unanswered before it
// is presumed lost and made again.
const WATCH_MS = 500;
const STALL_MS = 1000;
const RESTART_AFTER_MS = 3000;
const RESTART_AGAIN_MS = 4000;
// The offerer has the stranger's answer but, this long after, not one candidate of theirs
// (ICE still "new": nothing to check, nothing checking us): they were lost on the way (seen
// with Chromium, an answer after a rollback sometimes gathers none), and only an ICE
// restart makes both sides gather and send them again.
const NO_CANDIDATES_MS = 4000;
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
  /** The stranger's offer met one of ours and ours was rolled back (perfect negotiation). */
  collided = false;
  /** Only relay (TURN) candidates are used: the stranger never sees our address. */
  relayOnly;
  remoteStream = new MediaStream();

  #send;
  #tracker;
  #onRemoteStream;
  #onState;
  #onRemoteMedia;
  #onHealth;
  #closed = false;
  #everConnected = false;
  #stalled = false;
  #watchTimer = null;
  /** The check that the stranger's candidates came after their answer (#expectCandidates). */
  #candidateTimer = null;
  #received = -1;
  #progressAt = 0;
  #lostAt = 0;
  #restartedAt = -Infinity;
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
   * @param {() => void} [o.onHealth]  the stranger's media stalled or flows again
   * @param {{pc: RTCPeerConnection|null, later: object[]}} [o.warm]  a peer connection made
   *   ahead (warm.js), local media attached, to use instead of a new one; `later` are the
   *   candidates its early offer did not hold
   * @param {boolean} [o.offered]  our early offer reached the stranger (`matched` said so)
   */
  constructor({ room, role, iceServers, relayOnly = false, localStream, send, tracker, onRemoteStream, onState, onRemoteMedia, onHealth, warm = null, offered = false }) {
    this.room = room;
    this.role = role;
    this.polite = role === 'answerer';
    this.relayOnly = Boolean(relayOnly);
    this.#send = send;
    this.#tracker = tracker;
    this.#onRemoteStream = onRemoteStream;
    this.#onState = onState;
    this.#onRemoteMedia = onRemoteMedia;
    this.#onHealth = onHealth;

    this.pc = warm && warm.pc ? warm.pc : createPeerConnection(iceServers, relayOnly);
    if (!this.pc) return; // No WebRTC here: the call is text only.
    openPeerConnections.add(this.pc);
    // Handlers first (ontrack above all), then media: adding media is what
    // fires negotiationneeded and starts the offer/answer exchange.
    this.#attachHandlers();
    if (warm && warm.pc) this.#startWarm(warm.later, offered);
    else addLocalMedia(this.pc, localStream);
  }

  /**
   * A warm connection has its media (its negotiationneeded has fired already, unheard):
   * the offerer sends what the stranger does not have yet; the answerer waits for the
   * stranger's offer (given with `matched` or relayed), which rolls back an early offer of
   * ours it meets.
   */
  #startWarm(later, offered) {
    if (this.polite) return;
    if (offered) {
      for (const candidate of later) this.#sendMessage({ type: 'candidate', candidate });
    } else if (this.pc.signalingState === 'have-local-offer') {
      // Made ahead but not handed over in time: it holds every candidate gathered so far.
      this.#sendDescription();
    } else {
      this.#negotiate();
    }
  }

  get closed() {
    return this.#closed;
  }

  /** The call has been connected once: from then on it is recovered, never given up. */
  get everConnected() {
    return this.#everConnected;
  }

  /** Nothing has come from the stranger for a while, whatever connectionState says. */
  get stalled() {
    return this.#stalled;
  }

  /**
   * Signaling reaches the stranger again (`resumed`): a restart offer sent meanwhile may
   * have been lost on the way, so the offerer makes a fresh one at once if the media is
   * not flowing, or always when `networkChanged` (our connection or the stranger's was
   * lost to the network, so addresses may have changed).
   */
  signalingRestored(networkChanged) {
    if (this.#closed || !this.pc || !this.#everConnected) return;
    if (networkChanged || this.pc.connectionState !== 'connected' || this.#stalled) this.#recover();
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

  /**
   * Tears everything down. Safe to call more than once. `later`: the peer connection itself
   * is closed a moment later (nothing of it reaches us meanwhile).
   */
  close({ later = false } = {}) {
    if (this.#closed) return;
    this.#closed = true;
    this.#watchTimer = this.#tracker.clear(this.#watchTimer);
    this.#candidateTimer = this.#tracker.clear(this.#candidateTimer);

    for (const offs of this.#trackListeners.values()) offs.forEach((off) => off());
    this.#trackListeners.clear();

    const pc = this.pc;
    if (pc) {
      for (const name of PC_HANDLERS) pc[name] = null;
      const shut = () => {
        try {
          pc.close();
        } catch {
          // Already closed.
        }
        openPeerConnections.delete(pc);
      };
      if (later) this.#tracker.timeout(shut, CLOSE_LATER_MS);
      else shut();
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
      const state = pc.iceConnectionState;
      // Checking: the stranger's candidates came (#expectCandidates has nothing to do).
      if (state !== 'new') this.#candidateTimer = this.#tracker.clear(this.#candidateTimer);
      if (state === 'connected' || state === 'completed') this.#lostAt = 0;
      else if ((state === 'disconnected' || state === 'failed') && !this.#lostAt) this.#lostAt = performance.now();
      if (state === 'failed' && !this.#everConnected) this.#restartIce();
    };
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

    if (offerCollision) this.collided = true;
    this.#settingRemoteAnswerPending = type === 'answer';
    try {
      await pc.setRemoteDescription({ type, sdp });
    } finally {
      this.#settingRemoteAnswerPending = false;
    }
    if (this.#closed) return;
    if (type === 'offer') this.#remoteOfferApplied = true;
    if (type === 'answer') this.#expectCandidates();
    await this.#flushCandidates();

    if (type === 'offer') {
      await pc.setLocalDescription();
      if (this.#closed) return;
      this.#sendDescription();
    }
  }

  /** After an answer: restarts ICE if no candidate of the stranger's comes (NO_CANDIDATES_MS). */
  #expectCandidates() {
    this.#candidateTimer = this.#tracker.clear(this.#candidateTimer);
    if (this.pc.iceConnectionState !== 'new') return; // its checks reached us already
    this.#candidateTimer = this.#tracker.timeout(() => {
      this.#candidateTimer = null;
      if (this.#closed || this.pc.iceConnectionState !== 'new') return;
      console.info('strangers: no ICE candidates from the stranger; restarting ICE');
      this.#restartIce();
    }, NO_CANDIDATES_MS);
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
    if (state === 'failed' && !this.#everConnected) this.#restartIce();
    else if (state === 'connected') {
      this.#restarts = 0;
      if (!this.#everConnected) this.#startWatching();
    }
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

  // ------------------------------------------------------------ recovery
  //
  // Once connected, a call is watched: incoming packets that stop for STALL_MS mark it
  // stalled (the picture froze, whatever connectionState says), and a connection that stays
  // lost is restarted by the offerer every RESTART_AGAIN_MS for as long as the call lasts:
  // the network may come back at any time, and the stranger is there until the server says
  // otherwise.

  #startWatching() {
    this.#everConnected = true;
    this.#progressAt = performance.now();
    this.#watchTimer = this.#tracker.interval(() => {
      this.#watch().catch((err) => console.info('strangers: could not read call stats', err));
    }, WATCH_MS);
  }

  async #watch() {
    if (this.#closed) return;
    let received = 0;
    (await this.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp') received += (r.packetsReceived || 0) + (r.framesDecoded || 0);
    });
    if (this.#closed) return;
    const now = performance.now();
    if (received !== this.#received) {
      // The first reading, or something arrived.
      if (this.#received >= 0 || received > 0) this.#progressAt = now;
      this.#received = received;
      this.#setStalled(false);
    } else if (received > 0 && now - this.#progressAt >= STALL_MS) {
      this.#setStalled(true);
    }
    const lostFor = this.#lostAt ? now - this.#lostAt : 0;
    const stalledFor = this.#stalled ? now - this.#progressAt : 0;
    if (Math.max(lostFor, stalledFor) >= RESTART_AFTER_MS && now - this.#restartedAt >= RESTART_AGAIN_MS) {
      this.#recover();
    }
  }

  #setStalled(stalled) {
    if (stalled === this.#stalled) return;
    this.#stalled = stalled;
    // The path works again: the stranger's decoder lost our stream meanwhile, and waiting
    // for it to ask for a keyframe was seen to take 3 s. Restart our video at once instead.
    if (!stalled) this.#restartVideo();
    if (this.#onHealth) this.#onHealth();
  }

  /** Turns our video encodings off and on again, which starts them with a keyframe. */
  #restartVideo() {
    for (const sender of this.pc.getSenders()) {
      if (!sender.track || sender.track.kind !== 'video') continue;
      const toggle = async (active) => {
        const params = sender.getParameters();
        if (!params.encodings || params.encodings.length === 0) return;
        for (const encoding of params.encodings) encoding.active = active;
        await sender.setParameters(params);
      };
      toggle(false)
        .then(() => toggle(true))
        .catch((err) => {
          if (!this.#closed) console.info('strangers: could not restart our video', err);
        });
    }
  }

  /** The offerer restarts ICE, dropping an earlier restart offer nobody answered. */
  #recover() {
    if (this.polite || this.#closed) return;
    this.#restartedAt = performance.now();
    const pc = this.pc;
    const restart = async () => {
      if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
      if (this.#closed || pc.signalingState !== 'stable') return;
      pc.restartIce(); // negotiationneeded makes and sends the offer
    };
    // In line with incoming signaling, so a rollback never cuts into an answer being applied.
    this.#inbox = this.#inbox
      .then(restart)
      .catch((err) => {
        if (!this.#closed) console.info('strangers: ICE restart failed', err);
      });
  }
}

/** Adds our tracks to `pc`, or a receive-only transceiver for a kind we do not send. */
export function addLocalMedia(pc, localStream) {
  for (const kind of ['audio', 'video']) {
    const tracks = localStream ? localStream.getTracks().filter((t) => t.kind === kind && isLive(t)) : [];
    try {
      if (tracks.length > 0) {
        for (const track of tracks) pc.addTrack(track, localStream);
      } else {
        // Nothing to send, but we still want the stranger's media: without a
        // transceiver the offer would have no m-line for it.
        pc.addTransceiver(kind, { direction: 'recvonly' });
      }
    } catch (err) {
      console.info(`strangers: could not add local ${kind}`, err);
    }
  }
}

/** A peer connection for these servers (`poolSize` candidates gathered ahead), or null. */
export function createPeerConnection(iceServers, relayOnly, poolSize = 0) {
  if (typeof RTCPeerConnection !== 'function') return null;
  const iceTransportPolicy = relayOnly ? 'relay' : 'all';
  const iceCandidatePoolSize = poolSize;
  try {
    return new RTCPeerConnection({ iceServers: Array.isArray(iceServers) ? iceServers : [], iceTransportPolicy, iceCandidatePoolSize });
  } catch (err) {
    // A malformed server list should not cost the call: fall back to host candidates.
    // Never when hiding our address, though: without servers a relay-only call cannot
    // connect, but it does not leak the address either.
    console.info('strangers: bad iceServers, trying without', err);
    try {
      return new RTCPeerConnection({ iceTransportPolicy, iceCandidatePoolSize });
    } catch {
      return null;
    }
  }
}
