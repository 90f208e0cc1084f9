// Every sentence the page shows for the session's states (the status line, the notices, the
// chat log's system lines) and the connection labels, in one place: the session logic picks
// which, the view shows it.

export const TEXT = {
  idle: 'Press Start to talk to a random stranger.',
  starting: 'Starting your camera…',
  looking: 'Looking for a stranger…',
  found: 'Stranger found, connecting…',
  connecting: 'Connecting…',
  connected: 'Connected to a stranger. Say hi!',
  stillConnecting: 'Still connecting… Press Next to try someone else.',
  stillConnectingRelay: 'Still connecting through the relay… Press Next to try someone else, or turn off Hide my IP.',
  interrupted: 'Connection interrupted, trying to recover…',
  failed: 'The video connection failed. Press Next to try someone else.',
  left: 'You left. Press Start to talk to someone new.',
  strangerLeft: 'Stranger has disconnected.',
  talking: "You're now talking to a random stranger. Say hi!",
  textConnected: "You're chatting with a random stranger. Say hi!",
  connectingServer: 'Connecting to the server…',
  reconnecting: 'Reconnecting…',
  connectedServer: 'Connected',
  offline: 'Offline',
  lostServer: 'Lost the connection to the server. Reconnecting…',
  lostServerLine: 'Lost the connection to the server.',
  callGoesOn: 'Reconnecting to the server… your call goes on.',
  noRemoteVideo: "Stranger's camera is off",
  remoteCameraOff: 'Stranger turned their camera off',
  noVideoCalls: 'Video calls are not supported in this browser. You can still text chat.',
  hideIpNoRelay:
    'Hide my IP is on, but no relay is available right now, so a call would show your address. Turn off Hide my IP to call directly.',
  reported: 'Thanks — the stranger was reported.',
  reportedIdle: 'You reported the stranger. Press Start to talk to someone new.',
  reportGone: 'The stranger left before your report was sent.',
  reportNotSent: 'Not connected to the server; the report was not sent.',
  rateLimited: "You're going too fast — slow down a little.",
  banned: "You can't be matched right now: other users reported you.",
  banOver: 'You can talk to strangers again. Press Start.',
};

export const CONNECTION_LABELS = {
  connecting: TEXT.connecting,
  connected: TEXT.connectedServer,
  reconnecting: TEXT.reconnecting,
  closed: TEXT.offline,
};
