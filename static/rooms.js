// What the session keeps of the room it is in, from `matched` to the room's end: a video
// call's record or a text chat's (the same shape, so the rest of the session need not ask
// which), and whether the server's ICE servers include a relay to make calls through.

/** A video call in `room`, just matched: nothing connected yet. */
export function videoCall(room, role, relayOnly) {
  return {
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
}

/** A text chat in `room`: up as soon as it is matched, no peer connection to wait for. */
export function textChat(room, role) {
  return {
    ...videoCall(room, role, false),
    peer: 'connected',
    // Resumed after a server restart like a call that was up (the stranger does the same).
    everConnected: true,
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
