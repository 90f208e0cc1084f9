// The chat page: a small state machine tying the signaling channel, the
// current call and the page controls together.
//
//   idle ──Start──► waiting ──matched──► connecting ──pc connected──► connected
//    ▲                 ▲                      │                          │
//    └──── Stop ───────┴──── Next / left ─────┴──────────────────────────┘

import { Signaling, Tracker, signalingUrl } from './signaling.js';
import { Call, openPeerConnectionCount } from './call.js';

const INTERESTS_KEY = 'strangers.interests';
const HIDE_IP_KEY = 'strangers.hideIp';
const MAX_INTERESTS = 8;
const MAX_INTEREST_CHARS = 32;
const MAX_CHAT_CHARS = 2000;
const AUTO_NEXT_DELAY_MS = 1000;
const TYPING_THROTTLE_MS = 2000;
const TYPING_IDLE_MS = 3000;
// The stranger re-sends typing:true every 2 s while typing; if that stops
// without a typing:false (lost, or they closed the tab) stop showing it.
const TYPING_STALE_MS = 6000;
const CONNECT_HINT_MS = 15000;
const TRANSIENT_STATUS_MS = 4000;
const FLASH_MS = 900;
const RATE_LIMIT_NOTICE_MS = 3000;
// A ban without retry_after: keep Start off this long before letting the user try again.
const BAN_FALLBACK_S = 60;
// How often the "Try again in about N minutes" text is brought up to date.
const BAN_REFRESH_MS = 30000;
const REPORT_REASONS = ['nudity', 'harassment', 'spam', 'under_18', 'other'];

const TEXT = {
  idle: 'Press Start to talk to a random stranger.',
  starting: 'Starting your camera…',
  looking: 'Looking for a stranger…',
  found: 'Stranger found, connecting…',
  connected: 'Connected to a stranger. Say hi!',
  stillConnecting: 'Still connecting… Press Next to try someone else.',
  stillConnectingRelay: 'Still connecting through the relay… Press Next to try someone else, or turn off Hide my IP.',
  interrupted: 'Connection interrupted, trying to recover…',
  failed: 'The video connection failed. Press Next to try someone else.',
  left: 'You left. Press Start to talk to someone new.',
  strangerLeft: 'Stranger has disconnected.',
  reconnecting: 'Reconnecting…',
  connectedServer: 'Connected',
  lostServer: 'Lost the connection to the server. Reconnecting…',
  callGoesOn: 'Reconnecting to the server… your call goes on.',
  noRemoteVideo: "Stranger's camera is off",
  remoteCameraOff: 'Stranger turned their camera off',
  reported: 'Thanks — the stranger was reported.',
  reportedIdle: 'You reported the stranger. Press Start to talk to someone new.',
  reportGone: 'The stranger left before your report was sent.',
  rateLimited: "You're going too fast — slow down a little.",
  banOver: 'You can talk to strangers again. Press Start.',
  hideIpNoRelay:
    'Hide my IP is on, but no relay is available right now, so a call would show your address. Turn off Hide my IP to call directly.',
};

// ---------------------------------------------------------------- elements

const $ = (id) => document.getElementById(id);
const ui = {
  frame: $('video-frame'),
  remoteVideo: $('remote-video'),
  localVideo: $('local-video'),
  notice: $('video-notice'),
  callTime: $('call-time'),
  remoteMuted: $('remote-muted'),
  selfUnseen: $('self-unseen'),
  start: $('start'),
  next: $('next'),
  stop: $('stop'),
  mute: $('mute'),
  camera: $('camera'),
  autoNext: $('auto-next'),
  hideIp: $('hide-ip'),
  hideIpLabel: $('hide-ip-label'),
  report: $('report'),
  reportDialog: $('report-dialog'),
  reportForm: $('report-form'),
  reportCancel: $('report-cancel'),
  status: $('status'),
  conn: $('conn'),
  online: $('online-count'),
  common: $('common'),
  log: $('chat-log'),
  typing: $('typing'),
  form: $('chat-form'),
  input: $('chat-input'),
  send: $('send'),
};

// ---------------------------------------------------------------- state

const tracker = new Tracker();
const signaling = new Signaling(signalingUrl(), tracker);
const interests = readInterests();

const app = {
  /** "idle" | "waiting" | "connecting" | "connected" */
  state: 'idle',
  /** The user pressed Start and has not pressed Stop (we want to be matched). */
  active: false,
  /** @type {Call|null} */
  call: null,
  iceServers: [],
  /** The server offers a TURN relay (so "Hide my IP" can work). */
  turnOffered: false,
  /** A welcome has said whether there is a relay. */
  welcomed: false,
  /** What the stranger told us of their camera and microphone (true = on). */
  remoteMedia: { video: true, audio: true },
  /** What the idle-but-active pause before auto-next shows on the video. */
  pauseNotice: TEXT.strangerLeft,
  /** The room of a call that went on while signaling reconnected; asked back on reconnect. */
  resuming: null,
  /** Why: the server restarted ("restart") or our connection was lost ("network"). */
  resumeReason: null,
  /** Refused matching: {until: ms since epoch, message: string from the server or ""}. */
  ban: null,
  /** When the last "going too fast" notice was shown. */
  rateLimitShownAt: -Infinity,
  /** @type {MediaStream|null} kept for the whole page, across calls */
  localStream: null,
  /** @type {Promise<void>|null} getUserMedia, asked once per page */
  media: null,
  mediaReady: false,
  /** Why we have no camera or microphone, for the notice; "" when all is well. */
  mediaProblem: '',
  /** Bumped on every Start so a late media answer cannot join twice. */
  startGeneration: 0,
  baseStatus: TEXT.idle,
  callStartedAt: 0,
  remoteTyping: false,
  typingSentAt: 0,
  typingActive: false,
  timers: {
    autoJoin: null,
    callClock: null,
    connectHint: null,
    typingIdle: null,
    typingStale: null,
    transient: null,
    flash: null,
    ban: null,
  },
};

// ---------------------------------------------------------------- helpers

function clearTimer(name) {
  app.timers[name] = tracker.clear(app.timers[name]);
}

function setTimer(name, fn, ms) {
  clearTimer(name);
  app.timers[name] = tracker.timeout(() => {
    app.timers[name] = null;
    fn();
  }, ms);
}

function storageGet(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null; // Storage can be disabled; it is only a convenience.
  }
}

function storageSet(key, value) {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // Same as above.
  }
}

/** Parses "Music, chess ,music" into ["music", "chess"] within the protocol's limits. */
function parseInterests(raw) {
  const seen = new Set();
  for (const part of String(raw || '').split(',')) {
    const tag = part.trim().replace(/\s+/g, ' ').toLowerCase();
    const length = [...tag].length; // count characters, not UTF-16 units
    if (length < 1 || length > MAX_INTEREST_CHARS) continue;
    seen.add(tag);
    if (seen.size >= MAX_INTERESTS) break;
  }
  return [...seen];
}

function readInterests() {
  const params = new URLSearchParams(window.location.search);
  if (!params.has('interests')) return [];
  const list = parseInterests(params.get('interests'));
  storageSet(INTERESTS_KEY, list.join(', '));
  return list;
}

function formatClock(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  return `${String(minutes).padStart(2, '0')}:${String(seconds).padStart(2, '0')}`;
}

// ---------------------------------------------------------------- status and view

/** Sets the lasting status line (and drops any transient message it replaces). */
function setStatus(text) {
  // While matching is refused the ban is the lasting status, whatever else happens
  // (a reconnect, say); transient messages can still show over it for a moment.
  if (app.ban) text = banText();
  // Re-stating the same status (say a "waiting" after our own join) must not cut
  // short a message being shown, such as why the camera is unavailable.
  if (text === app.baseStatus && app.timers.transient !== null) return;
  app.baseStatus = text;
  clearTimer('transient');
  ui.status.textContent = text;
}

/** Shows a message for a few seconds, then goes back to the lasting status. */
function flashStatus(text, ms = TRANSIENT_STATUS_MS) {
  ui.status.textContent = text;
  setTimer('transient', () => {
    ui.status.textContent = app.baseStatus;
  }, ms);
}

function setState(state) {
  app.state = state;
  document.body.dataset.state = state;
  renderControls();
  renderNotice();
}

function inRoom() {
  return app.call !== null;
}

function renderControls() {
  // Start: only when not already looking or talking, and not while matching is refused.
  ui.start.disabled = app.active || app.ban !== null || hidingWithoutRelay();
  // Next: whenever we are looking or talking (it also skips the auto-next pause).
  ui.next.disabled = !app.active || !app.mediaReady;
  ui.stop.disabled = !app.active && !inRoom();
  const chatOpen = inRoom();
  ui.input.disabled = !chatOpen;
  ui.send.disabled = !chatOpen;
  // Report: only in a call (there is someone to report).
  ui.report.hidden = !chatOpen;
  ui.report.disabled = !chatOpen;
  renderMediaButtons();
}

function renderMediaButtons() {
  const stream = app.localStream;
  const audio = stream ? stream.getAudioTracks()[0] : undefined;
  const video = stream ? stream.getVideoTracks()[0] : undefined;
  ui.mute.disabled = !audio;
  ui.camera.disabled = !video;
  ui.mute.setAttribute('aria-pressed', String(Boolean(audio && !audio.enabled)));
  ui.camera.setAttribute('aria-pressed', String(Boolean(video && !video.enabled)));
  ui.frame.classList.toggle('local-camera-off', !video || !video.enabled);
}

/** The overlay on the remote video: what is happening while there is no picture. */
function renderNotice() {
  let main = '';
  switch (app.state) {
    case 'idle':
      // Idle but active: the short pause before auto-next joins again.
      if (app.ban) main = banText();
      else main = app.active ? app.pauseNotice : TEXT.idle;
      break;
    case 'waiting':
      main = app.mediaReady ? TEXT.looking : TEXT.starting;
      break;
    case 'connecting':
      main = 'Connecting…';
      break;
    case 'connected':
      if (app.call && app.call.stalled) main = TEXT.interrupted;
      else if (remoteCameraOff()) main = TEXT.remoteCameraOff;
      else main = app.call && !app.call.hasRemoteVideo() ? TEXT.noRemoteVideo : '';
      break;
    default:
      break;
  }
  const showingVideo = app.state === 'connected' && main === '';
  ui.notice.replaceChildren();
  if (main) ui.notice.append(textBlock('notice-main', main));
  // Still connecting, but already told the stranger's camera is off.
  if (app.state === 'connecting' && remoteCameraOff()) ui.notice.append(textBlock('notice-info', TEXT.remoteCameraOff));
  // Our own media problem stays visible until the stranger's picture covers it.
  if (app.mediaProblem && !showingVideo) ui.notice.append(textBlock('notice-sub', app.mediaProblem));
  ui.notice.hidden = ui.notice.childElementCount === 0;
  ui.remoteMuted.hidden = !(inRoom() && app.remoteMedia.audio === false);
  // Without camera or microphone the stranger gets no picture of us: keep saying so for the
  // whole call, even once their picture covers the notice above.
  ui.selfUnseen.hidden = !(inRoom() && app.mediaProblem);
}

/** The stranger said (with a media message) that their camera is off. */
function remoteCameraOff() {
  return inRoom() && app.remoteMedia.video === false;
}

function textBlock(className, text) {
  const p = document.createElement('p');
  p.className = className;
  p.textContent = text;
  return p;
}

function setOnline(count) {
  if (Number.isInteger(count) && count >= 0) ui.online.textContent = `${count} online`;
}

function renderConnection(status) {
  const labels = {
    connecting: 'Connecting…',
    connected: TEXT.connectedServer,
    reconnecting: TEXT.reconnecting,
    closed: 'Offline',
  };
  ui.conn.textContent = labels[status] || '';
  ui.conn.dataset.status = status;
}

// ---------------------------------------------------------------- chat log

function addLine(kind, who, text) {
  const atBottom = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 40;
  const li = document.createElement('li');
  li.className = `msg ${kind}`;
  if (who) {
    const name = document.createElement('span');
    name.className = 'who';
    name.textContent = `${who}:`;
    li.append(name, ' ');
  }
  li.append(text); // a text node: user text never becomes markup
  ui.log.append(li);
  if (atBottom) ui.log.scrollTop = ui.log.scrollHeight;
}

function addSystemLine(text) {
  addLine('system', '', text);
}

function clearLog() {
  ui.log.replaceChildren();
}

function showCommon(common) {
  const list = Array.isArray(common) ? common.filter((c) => typeof c === 'string' && c) : [];
  ui.common.textContent = list.length ? `You both like: ${list.join(', ')}` : '';
  ui.common.hidden = list.length === 0;
}

// ---------------------------------------------------------------- typing indicator

function showRemoteTyping(active) {
  app.remoteTyping = active;
  ui.typing.hidden = !active;
  if (active) setTimer('typingStale', () => showRemoteTyping(false), TYPING_STALE_MS);
  else clearTimer('typingStale');
}

function sendTyping(active) {
  if (!app.call) return;
  app.typingActive = active;
  signaling.send({ type: 'typing', room: app.call.room, active });
}

function onChatInput() {
  if (!app.call) return;
  if (ui.input.value.trim() === '') {
    stopTyping(true);
    return;
  }
  const now = Date.now();
  if (!app.typingActive || now - app.typingSentAt >= TYPING_THROTTLE_MS) {
    app.typingSentAt = now;
    sendTyping(true);
  }
  setTimer('typingIdle', () => stopTyping(true), TYPING_IDLE_MS);
}

/** Ends our typing state; tells the stranger only if they were told we were typing. */
function stopTyping(notify) {
  clearTimer('typingIdle');
  if (app.typingActive && notify) sendTyping(false);
  app.typingActive = false;
  app.typingSentAt = 0;
}

// ---------------------------------------------------------------- media

function describeMediaError(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'permission denied';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'none found';
    case 'NotReadableError':
    case 'AbortError':
      return 'the device is busy or unavailable';
    default:
      return (err && err.message) || 'not available';
  }
}

async function getMedia(constraints) {
  return navigator.mediaDevices.getUserMedia(constraints);
}

/** Asks for camera and microphone once per page. Never rejects. */
function ensureMedia() {
  if (!app.media) app.media = acquireMedia();
  return app.media;
}

async function acquireMedia() {
  if (!navigator.mediaDevices || typeof navigator.mediaDevices.getUserMedia !== 'function') {
    setMediaProblem('', 'this page needs HTTPS or a newer browser');
    return;
  }
  let stream = null;
  let reason = '';
  try {
    stream = await getMedia({ video: true, audio: true });
  } catch (err) {
    reason = describeMediaError(err);
    console.info('strangers: camera and microphone unavailable:', err && err.name);
    // With one of the two missing, still use the other.
    if (err && (err.name === 'NotFoundError' || err.name === 'OverconstrainedError' || err.name === 'NotReadableError')) {
      stream = await getMedia({ audio: true }).catch(() => null);
      if (!stream) stream = await getMedia({ video: true }).catch(() => null);
    }
  }
  if (stream) {
    app.localStream = stream;
    ui.localVideo.srcObject = stream;
    ui.localVideo.play().catch(() => {}); // autoplay+muted normally suffices
    ui.frame.classList.add('has-local');
  }
  const hasAudio = Boolean(stream && stream.getAudioTracks().length);
  const hasVideo = Boolean(stream && stream.getVideoTracks().length);
  if (!hasAudio && !hasVideo) setMediaProblem('camera/microphone', reason || 'not available');
  else if (!hasVideo) setMediaProblem('camera', reason || 'none found');
  else if (!hasAudio) setMediaProblem('microphone', reason || 'none found');
  renderMediaButtons();
}

function setMediaProblem(what, reason) {
  const label = what || 'camera/microphone';
  const tail =
    label === 'camera/microphone'
      ? 'You can still text chat.'
      : label === 'camera'
        ? 'The stranger can still hear you.'
        : 'The stranger can still see you.';
  app.mediaProblem = `No ${label}: ${reason}. ${tail}`;
  ui.frame.classList.toggle('no-local-video', label !== 'microphone');
}

function toggleTrack(kind) {
  const stream = app.localStream;
  if (!stream) return;
  const tracks = kind === 'audio' ? stream.getAudioTracks() : stream.getVideoTracks();
  if (!tracks.length) return;
  const enable = !tracks[0].enabled;
  for (const track of tracks) track.enabled = enable;
  renderMediaButtons();
  // Tell the stranger, so they see "camera off" / "muted" rather than a black or silent call.
  if (inRoom()) sendMediaState();
}

/** Whether we are sending live, enabled video and audio (no device counts as off). */
function localMediaState() {
  const stream = app.localStream;
  const on = (tracks) => tracks.some((t) => t.enabled && t.readyState === 'live');
  return {
    video: stream ? on(stream.getVideoTracks()) : false,
    audio: stream ? on(stream.getAudioTracks()) : false,
  };
}

function sendMediaState() {
  if (!app.call) return;
  const { video, audio } = localMediaState();
  signaling.send({ type: 'media', room: app.call.room, video, audio });
}

// ---------------------------------------------------------------- hide my IP

/** Whether the server hands out a TURN relay (a turn: or turns: URL). */
function offersTurn(iceServers) {
  return iceServers.some((server) => {
    if (!server || typeof server !== 'object') return false;
    const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
    return urls.some((url) => typeof url === 'string' && /^turns?:/i.test(url.trim()));
  });
}

/** The checkbox is offered when there is a relay to hide behind, and stays visible while
 * it is on without one, so it can be turned off. */
function renderHideIp() {
  const shown = app.turnOffered || ui.hideIp.checked;
  ui.hideIpLabel.hidden = !shown;
  ui.hideIp.hidden = !shown;
}

/** New calls go through the relay only (iceTransportPolicy "relay"). Fails closed: with
 * Hide my IP on and no relay, a call gathers no candidate at all rather than our own. */
function relayOnly() {
  return ui.hideIp.checked;
}

/** Hide my IP is on but the server has no relay: no call may start. */
function hidingWithoutRelay() {
  return ui.hideIp.checked && app.welcomed && !app.turnOffered;
}

/** Called when the relay offer or the checkbox changed: say why calls are off, or undo it. */
function checkHideIp() {
  renderHideIp();
  if (hidingWithoutRelay()) {
    // Queued before we knew there was no relay: leave the queue (a call already running
    // is relay-only, so it shows nothing of ours).
    if (app.active && !inRoom()) {
      signaling.send({ type: 'leave' });
      app.active = false;
      app.startGeneration += 1;
      clearTimer('autoJoin');
      setState('idle');
    }
    if (!inRoom()) setStatus(TEXT.hideIpNoRelay);
  } else if (app.baseStatus === TEXT.hideIpNoRelay) {
    setStatus(TEXT.idle);
  }
  renderControls();
}

function onHideIpChange() {
  const on = ui.hideIp.checked;
  storageSet(HIDE_IP_KEY, on ? '1' : '0');
  checkHideIp();
  // A running call keeps the route it has; a new peer connection is needed to change it.
  if (inRoom()) flashStatus(`Hide my IP is ${on ? 'on' : 'off'}: it applies from your next call.`);
}

// ---------------------------------------------------------------- remote video

function playRemote() {
  const video = ui.remoteVideo;
  // After any click on the page the browser lets us play with sound.
  if (video.muted && navigator.userActivation && navigator.userActivation.hasBeenActive) video.muted = false;
  const attempt = video.play();
  if (!attempt) return;
  attempt.catch((err) => {
    if (err && err.name === 'NotAllowedError' && !video.muted) {
      // Autoplay with sound was refused: play muted and let a tap unmute.
      video.muted = true;
      ui.frame.classList.add('sound-blocked');
      video.play().catch(() => {});
    }
    // AbortError just means the source changed (a new call); nothing to do.
  });
}

function unmuteRemote() {
  if (!ui.remoteVideo.muted) return;
  ui.remoteVideo.muted = false;
  ui.frame.classList.remove('sound-blocked');
  ui.remoteVideo.play().catch(() => {});
}

function onRemoteMedia() {
  if (app.call && app.call.remoteStream.getTracks().length) playRemote();
  renderNotice();
}

// ---------------------------------------------------------------- call lifecycle

function flashFrame() {
  ui.frame.classList.remove('flash');
  void ui.frame.offsetWidth; // restart the CSS animation
  ui.frame.classList.add('flash');
  setTimer('flash', () => ui.frame.classList.remove('flash'), FLASH_MS);
}

function startClock() {
  app.callStartedAt = Date.now();
  ui.callTime.textContent = '00:00';
  ui.callTime.hidden = false;
  clearTimer('callClock');
  app.timers.callClock = tracker.interval(() => {
    ui.callTime.textContent = formatClock(Date.now() - app.callStartedAt);
  }, 1000);
}

function stopClock() {
  clearTimer('callClock');
  ui.callTime.hidden = true;
}

/** Closes the current call (if any) and resets everything that belonged to it. */
function endCall() {
  app.resuming = null;
  if (app.call) {
    app.call.close();
    app.call = null;
  }
  stopClock();
  clearTimer('connectHint');
  stopTyping(false);
  showRemoteTyping(false);
  showCommon([]);
  ui.frame.classList.remove('sound-blocked');
  app.remoteMedia = { video: true, audio: true };
  ui.remoteMuted.hidden = true;
  closeReportDialog();
}

function beginCall(room, role, common) {
  endCall();
  clearLog();
  app.call = new Call({
    room,
    role,
    iceServers: app.iceServers,
    relayOnly: relayOnly(),
    localStream: app.localStream,
    send: (message) => signaling.send(message),
    tracker,
    remoteVideo: ui.remoteVideo,
    onState: onPeerState,
    onRemoteMedia,
    onHealth: onCallHealth,
  });
  setState('connecting');
  setStatus(TEXT.found);
  addSystemLine("You're now talking to a random stranger. Say hi!");
  showCommon(common);
  flashFrame();
  startClock();
  setTimer('connectHint', () => {
    if (app.state !== 'connecting') return;
    setStatus(app.call && app.call.relayOnly ? TEXT.stillConnectingRelay : TEXT.stillConnecting);
  }, CONNECT_HINT_MS);
  if (!app.call.pc) flashStatus('Video calls are not supported in this browser. You can still text chat.');
  // The stranger assumes camera and microphone are on until told otherwise.
  const media = localMediaState();
  if (!media.video || !media.audio) sendMediaState();
}

function onPeerState(state) {
  switch (state) {
    case 'connected':
      clearTimer('connectHint');
      setState('connected');
      setStatus(app.call && app.call.stalled ? TEXT.interrupted : TEXT.connected);
      break;
    case 'disconnected':
      setState('connecting');
      setStatus(TEXT.interrupted);
      break;
    case 'failed':
      setState('connecting');
      // A call that was up is recovered for as long as the stranger is there: never "failed".
      setStatus(app.call && app.call.everConnected ? TEXT.interrupted : TEXT.failed);
      break;
    default:
      break;
  }
}

/** The stranger's media stalled (the picture froze) or flows again. */
function onCallHealth() {
  const call = app.call;
  if (!call) return;
  renderNotice();
  if (call.stalled) setStatus(TEXT.interrupted);
  else if (call.pc && call.pc.connectionState === 'connected') setStatus(TEXT.connected);
}

/** Enters (or re-enters) the queue. */
function join() {
  clearTimer('autoJoin');
  if (app.ban) return; // the server would only refuse again
  if (hidingWithoutRelay()) {
    checkHideIp(); // stop looking, and say why
    return;
  }
  setState('waiting');
  if (signaling.send({ type: 'join', interests })) setStatus(TEXT.looking);
  // Not connected yet: the "open" handler joins once the socket is up.
  else setStatus(signaling.status === 'connecting' ? 'Connecting to the server…' : TEXT.reconnecting);
}

// ---------------------------------------------------------------- user actions

async function start() {
  if (app.active || app.ban || hidingWithoutRelay()) return;
  app.active = true;
  const generation = ++app.startGeneration;
  clearTimer('autoJoin');
  setState('waiting');
  if (!app.mediaReady) setStatus(TEXT.starting);
  await ensureMedia();
  app.mediaReady = true;
  // Stop (and maybe Start again) may have been pressed while the browser asked.
  if (!app.active || generation !== app.startGeneration) return;
  join();
  if (app.mediaProblem) flashStatus(app.mediaProblem, 6000);
}

function next() {
  if (!app.active || !app.mediaReady) return;
  clearTimer('autoJoin');
  if (inRoom()) {
    // The server ends the room (the stranger is told) and queues us again.
    signaling.send({ type: 'next' });
    endCall();
    clearLog();
    setState('waiting');
    setStatus(TEXT.looking);
  } else {
    // Not in a room (waiting, or pausing before auto-next): join carries our interests.
    clearLog();
    join();
  }
}

function stop() {
  if (!app.active && !inRoom()) return;
  app.active = false;
  app.startGeneration += 1;
  clearTimer('autoJoin');
  signaling.send({ type: 'leave' });
  endCall();
  setState('idle');
  setStatus(TEXT.left);
}

/** After a report or a stranger leaving: pause, then look again (Auto-next), or go idle. */
function afterCall(pauseNotice, idleStatus) {
  if (ui.autoNext.checked && app.active) {
    app.pauseNotice = pauseNotice;
    setState('idle');
    setTimer('autoJoin', () => {
      if (app.active && !inRoom()) join();
    }, AUTO_NEXT_DELAY_MS);
  } else {
    app.active = false;
    app.startGeneration += 1;
    setState('idle');
    if (idleStatus) setStatus(idleStatus);
  }
}

// ---------------------------------------------------------------- report

function openReportDialog() {
  const dialog = ui.reportDialog;
  if (!inRoom() || dialog.open) return;
  ui.reportForm.reset();
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else dialog.setAttribute('open', ''); // very old browsers: a plain, non-modal box
}

function closeReportDialog() {
  const dialog = ui.reportDialog;
  if (!dialog.open) return;
  if (typeof dialog.close === 'function') dialog.close();
  else dialog.removeAttribute('open');
}

function sendReport(event) {
  event.preventDefault(); // we close the dialog ourselves
  // The radios are required, so the browser has already asked for a reason.
  const reason = new FormData(ui.reportForm).get('reason');
  if (!REPORT_REASONS.includes(reason)) return;
  if (!app.call) {
    closeReportDialog();
    return;
  }
  const room = app.call.room;
  if (!signaling.send({ type: 'report', room, reason })) {
    closeReportDialog();
    flashStatus('Not connected to the server; the report was not sent.');
    return;
  }
  // The report ends the room on the server (the stranger just sees us leave) and leaves
  // us idle, so this leave does nothing there; it only makes sure the room ends even if
  // the report was refused.
  signaling.send({ type: 'leave' });
  clearTimer('autoJoin');
  endCall();
  addSystemLine(TEXT.reported);
  setStatus(TEXT.reported);
  afterCall(TEXT.reported, TEXT.reportedIdle);
}

function sendChat(event) {
  event.preventDefault();
  const text = ui.input.value.trim();
  if (!text) return;
  if (!app.call) {
    flashStatus("You're not talking to anyone right now.");
    return;
  }
  if ([...text].length > MAX_CHAT_CHARS) {
    flashStatus(`Messages can be at most ${MAX_CHAT_CHARS} characters.`);
    return;
  }
  if (!signaling.send({ type: 'chat', room: app.call.room, text })) {
    flashStatus('Not connected to the server; message not sent.');
    return;
  }
  addLine('you', 'You', text);
  ui.input.value = '';
  stopTyping(true);
}

function isTextField(el) {
  if (!(el instanceof HTMLElement)) return false;
  if (el.isContentEditable || el.tagName === 'TEXTAREA') return true;
  return el.tagName === 'INPUT' && !['checkbox', 'radio', 'button', 'submit', 'reset'].includes(el.type);
}

function onKeyDown(event) {
  if (event.key !== 'Escape' || event.repeat || event.defaultPrevented) return;
  // Esc in the report dialog closes the dialog (the browser does that), nothing more.
  if (ui.reportDialog.open) {
    if (typeof ui.reportDialog.showModal !== 'function') closeReportDialog(); // no <dialog> support
    return;
  }
  // Esc while typing a message must not skip the stranger.
  if (event.target === ui.input || isTextField(event.target)) return;
  if (ui.next.disabled) return;
  event.preventDefault();
  next();
}

// ---------------------------------------------------------------- server messages

function currentRoom(message) {
  return app.call !== null && message.room === app.call.room;
}

const serverHandlers = {
  welcome(message) {
    if (Array.isArray(message.iceServers)) app.iceServers = message.iceServers;
    app.turnOffered = offersTurn(app.iceServers);
    app.welcomed = true;
    checkHideIp();
    setOnline(message.online);
  },

  online(message) {
    setOnline(message.count);
  },

  waiting() {
    // A late "waiting" after Stop or after a match must not undo either.
    if (!app.active || inRoom()) return;
    setState('waiting');
    setStatus(TEXT.looking);
  },

  matched(message) {
    const role = message.role === 'offerer' || message.role === 'answerer' ? message.role : null;
    if (typeof message.room !== 'string' || !role) return;
    // We sent leave before this crossed it on the wire: the server ends that room.
    if (!app.active) return;
    beginCall(message.room, role, message.common);
  },

  resumed(message) {
    // Ours after we asked, or the stranger's: back on a new connection.
    if (!currentRoom(message)) return;
    // Only a server restart leaves every address as it was.
    const networkChanged = app.resuming !== message.room || app.resumeReason === 'network';
    app.resuming = null;
    signaling.releaseAbandoned();
    app.call.signalingRestored(networkChanged);
    const flowing = app.state === 'connected' && !app.call.stalled;
    setStatus(flowing ? TEXT.connected : app.call.everConnected ? TEXT.interrupted : TEXT.found);
  },

  left(message) {
    if (!currentRoom(message)) return; // a room we already left
    const wasReporting = ui.reportDialog.open;
    endCall();
    addSystemLine(TEXT.strangerLeft);
    if (wasReporting) addSystemLine(TEXT.reportGone);
    setStatus(TEXT.strangerLeft);
    afterCall(TEXT.strangerLeft, null);
  },

  offer: relayToCall,
  answer: relayToCall,
  candidate: relayToCall,

  chat(message) {
    if (!currentRoom(message) || typeof message.text !== 'string') return;
    showRemoteTyping(false);
    addLine('stranger', 'Stranger', message.text);
  },

  typing(message) {
    if (!currentRoom(message)) return;
    showRemoteTyping(message.active === true);
  },

  media(message) {
    if (!currentRoom(message)) return;
    if (typeof message.video !== 'boolean' || typeof message.audio !== 'boolean') return;
    app.remoteMedia = { video: message.video, audio: message.audio };
    renderNotice();
  },

  error(message) {
    const text = typeof message.message === 'string' && message.message ? message.message : 'Request refused.';
    switch (message.code) {
      case 'banned':
        onBanned(message);
        return;
      case 'rate_limited': {
        // Sent once per run of dropped messages; still, never nag more than every 3 s.
        const now = performance.now();
        if (now - app.rateLimitShownAt < RATE_LIMIT_NOTICE_MS) return;
        app.rateLimitShownAt = now;
        flashStatus(TEXT.rateLimited, RATE_LIMIT_NOTICE_MS);
        return;
      }
      default:
        console.info('strangers: server refused a message:', message.code, text);
        flashStatus(`Server: ${text}`);
    }
  },
};

// ---------------------------------------------------------------- banned

/** "Try again in about N minutes", counted from now; or the server's words. */
function banText() {
  const ban = app.ban;
  if (!ban) return '';
  if (!ban.timed) return ban.message || "You can't be matched right now: other users reported you.";
  const minutes = Math.max(1, Math.ceil((ban.until - Date.now()) / 60000));
  return (
    "You can't be matched right now: other users reported you. " +
    `Try again in about ${minutes} ${minutes === 1 ? 'minute' : 'minutes'}.`
  );
}

function onBanned(message) {
  const seconds = Number.isFinite(message.retry_after) && message.retry_after >= 0 ? message.retry_after : null;
  app.ban = {
    until: Date.now() + (seconds ?? BAN_FALLBACK_S) * 1000,
    timed: seconds !== null,
    message: typeof message.message === 'string' ? message.message.trim() : '',
  };
  // Stop looking, and stop every automatic way back into the queue (auto-next, a
  // reconnect) until the ban is over; Start stays off until then too.
  app.active = false;
  app.startGeneration += 1;
  clearTimer('autoJoin');
  if (inRoom()) {
    signaling.send({ type: 'leave' });
    endCall();
  }
  setState('idle');
  checkBan(); // shows the ban in the status line and on the video
}

/** Keeps the minutes shown up to date and lifts the ban when its time is up. */
function checkBan() {
  if (!app.ban) return;
  const left = app.ban.until - Date.now();
  if (left <= 0) {
    app.ban = null;
    clearTimer('ban');
    setState(app.state);
    setStatus(TEXT.banOver);
    return;
  }
  setStatus(banText());
  renderNotice();
  setTimer('ban', checkBan, Math.min(left, BAN_REFRESH_MS));
}

function relayToCall(message) {
  if (currentRoom(message)) app.call.handle(message);
}

function onSocketOpen({ reconnected }) {
  // A call that kept playing through the drop: ask the server for its room back (the
  // stranger does the same); if the call died meanwhile, look for someone new instead.
  if (app.resuming !== null) {
    if (app.call && app.call.everConnected) {
      signaling.send({ type: 'resume', room: app.resuming, role: app.call.role });
      return;
    }
    endCall();
  }
  // After a drop the server has forgotten us: queue again if the user still wants to.
  if (app.active && app.mediaReady && !inRoom() && app.timers.autoJoin === null) join();
  else if (!app.active && reconnected) setStatus(TEXT.idle);
  if (reconnected) flashStatus(TEXT.connectedServer, 2000);
}

function onSocketDown({ code }) {
  // A connected call does not need the server: keep it playing and ask for the room back
  // once signaling is up again (after a restart the stranger does the same).
  if (inRoom() && app.call.everConnected) {
    app.resuming = app.call.room;
    app.resumeReason = code === 1012 ? 'restart' : 'network';
    const flowing = app.call.pc.connectionState === 'connected' && !app.call.stalled;
    setStatus(flowing ? TEXT.callGoesOn : TEXT.interrupted);
    return;
  }
  // The server ended our room when the socket went, and the stranger was told.
  if (inRoom()) {
    endCall();
    addSystemLine('Lost the connection to the server.');
  }
  setState(app.active ? 'waiting' : 'idle');
  setStatus(app.active ? TEXT.lostServer : TEXT.reconnecting);
}

// ---------------------------------------------------------------- wiring

function wireSignaling() {
  for (const [type, handler] of Object.entries(serverHandlers)) signaling.on(type, handler);
  signaling.on('open', onSocketOpen);
  signaling.on('down', onSocketDown);
  signaling.on('status', ({ status }) => renderConnection(status));
}

function wirePage() {
  // Long-lived page controls: registered once, never removed, not counted.
  ui.start.addEventListener('click', () => {
    start().catch((err) => console.warn('strangers: start failed', err));
  });
  ui.next.addEventListener('click', next);
  ui.stop.addEventListener('click', stop);
  ui.mute.addEventListener('click', () => toggleTrack('audio'));
  ui.camera.addEventListener('click', () => toggleTrack('video'));
  ui.form.addEventListener('submit', sendChat);
  ui.input.addEventListener('input', onChatInput);
  ui.remoteVideo.addEventListener('click', unmuteRemote);
  ui.hideIp.addEventListener('change', onHideIpChange);
  ui.report.addEventListener('click', openReportDialog);
  ui.reportForm.addEventListener('submit', sendReport);
  ui.reportCancel.addEventListener('click', closeReportDialog);
  document.addEventListener('keydown', onKeyDown);
  window.addEventListener('pagehide', (event) => {
    if (event.persisted) return; // kept in the back/forward cache: pageshow reloads
    endCall();
    signaling.close();
  });
  window.addEventListener('pageshow', (event) => {
    // A page restored from the back/forward cache has dead sockets and calls.
    if (event.persisted) window.location.reload();
  });
}

function exposeTestHook() {
  window.__strangers = {
    get state() {
      return app.state;
    },
    get room() {
      return app.call ? app.call.room : null;
    },
    get role() {
      return app.call ? app.call.role : null;
    },
    get pc() {
      return app.call ? app.call.pc : null;
    },
    /** "Hide my IP" is checked: calls go through the relay whenever the server offers one. */
    get hideIp() {
      return ui.hideIp.checked;
    },
    debug() {
      const live = (t) => t.readyState === 'live';
      return {
        peerConnections: openPeerConnectionCount(),
        remoteTracks: app.call ? app.call.remoteTrackCount() : 0,
        localTracks: app.localStream ? app.localStream.getTracks().filter(live).length : 0,
        listeners: tracker.listenerCount,
        timers: tracker.timerCount,
      };
    },
  };
}

function main() {
  ui.hideIp.checked = storageGet(HIDE_IP_KEY) === '1';
  renderHideIp();
  exposeTestHook();
  wireSignaling();
  wirePage();
  setState('idle');
  setStatus(TEXT.idle);
  renderConnection('connecting');
  signaling.connect();

  // Arriving from the landing form means "start right away".
  const params = new URLSearchParams(window.location.search);
  if (params.get('start') === '1' || params.has('interests')) {
    start().catch((err) => console.warn('strangers: start failed', err));
  }
}

main();
