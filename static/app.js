// The chat page's wiring: makes the session (session.js), the signaling channel, the
// current call, our camera (media.js), the text chat (chat.js), the safety gate over the
// stranger's video (safety.js, classifier.js) and the page (view.js), and connects each one's
// events to the others. The decisions are the session's, the chat's and the gate's.

import { Signaling, Tracker, reconnectDelay, signalingUrl } from './signaling.js';
import { Call, openPeerConnectionCount } from './call.js';
import { Session } from './session.js';
import { Chat } from './chat.js';
import { Media } from './media.js';
import { View } from './view.js';
import { Prefs, languageName } from './prefs.js';
import { OfferAhead, WARM_MAX_AGE_MS, Warm, fitsCall } from './warm.js';
import { GATE_TEXT, Gate, WorkerSolver, gateRefusal } from './gate.js';
import { SafetyGate, SAFETY_TEXT, isUnsafe, parseThreshold, unsafeScore } from './safety.js';
import { Classifier } from './classifier.js';

/** The current call, made and closed on the session's word. @type {Call|null} */
let call = null;
/** The next call's peer connection, made ahead (warm.js). @type {Warm|null} */
let warm = null;
const tracker = new Tracker();
const clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => tracker.timeout(fn, ms),
  clearTimeout: (id) => tracker.clear(id),
};
const signaling = new Signaling(signalingUrl(), tracker, (attempt) => reconnectDelay(attempt, Math.random));
// Every join and Next passes the gate: the 18+ confirmation and a proof of work, solved in
// a worker ahead of time.
const gate = new Gate({
  storage: () => window.localStorage,
  send: (message) => signaling.send(message),
  isOpen: () => signaling.isOpen,
  solver: new WorkerSolver(() => new Worker(new URL('./pow-worker.js', import.meta.url), { type: 'module' })),
});
const send = (message) => gate.send(message);
const prefs = new Prefs(window.location.search, () => window.localStorage);
/** A text chat page: the server left out every video element; the camera is never asked for. */
const textMode = document.getElementById('chat-page')?.dataset.mode === 'text';
const lang = prefs.lang(navigator.language);
const interests = prefs.interests();
// `?ahead=0`: the flow without anything made ahead (for the benchmarks' comparison). A text
// chat page has no call, so it never makes one ahead.
const aheadOn = prefs.offerAhead && !textMode;
const view = new View(document, tracker);
const ui = view.ui;
ui.hideIp.checked = prefs.hideIp;
const media = textMode ? null : new Media(ui, navigator.mediaDevices);
const chat = new Chat({
  clock,
  send,
  show: {
    line: (kind, who, text) => view.addLine(kind, who, text),
    typing: (active) => view.showTyping(active),
  },
});
const ahead = new OfferAhead({
  clock,
  makeOffer: () => (warm ? warm.offer() : Promise.resolve(null)),
  fullOffer: () => (warm ? warm.fullOffer() : Promise.resolve(null)),
  send: (sdp) => session.earlyOffer(sdp),
});
ui.blurSafe.checked = prefs.blurUntilSafe;
ui.autoSkipUnsafe.checked = prefs.autoSkipUnsafe;
const unsafeThreshold = parseThreshold(ui.frame.dataset.unsafeThreshold);
const safety = new SafetyGate({
  enabled: ui.blurSafe.checked,
  autoSkip: ui.autoSkipUnsafe.checked,
  onChange: () => showSafety(),
  onAutoSkip: () => session.next(),
});
const classifier = new Classifier({
  video: ui.remoteVideo,
  tracker,
  version: new URL(import.meta.url).searchParams.get('v') || '',
  onResult: (classes) => {
    if (classifier.stats.scores.length < 1000) classifier.stats.scores.push(unsafeScore(classes));
    safety.verdictIs(isUnsafe(classes, unsafeThreshold));
  },
  onState: (state) => {
    if (state === 'ready') safety.modelReady();
    else if (state === 'failed') safety.modelFailed();
    else safety.modelLoading();
  },
});
const session = new Session({
  clock,
  send,
  localMedia: () => (media ? media.state() : { video: false, audio: false }),
  command: perform,
  render: (state) => view.render(state),
  interests,
  hideIp: ui.hideIp.checked,
  autoNext: ui.autoNext.checked,
  confirmed: () => gate.confirmed,
  mode: textMode ? 'text' : 'video',
  lang,
  ahead: aheadOn,
});
const adult = document.getElementById('adult');

// ---------------------------------------------------------------- the session's commands

function perform(command) {
  switch (command.type) {
    case 'askMedia':
      media.ensure().then((problem) => {
        // Without a camera, the text chat is the obvious way to talk.
        if (problem) ui.switchMode?.classList.add('suggest');
        session.mediaReady(command.generation, problem);
      });
      break;
    case 'beginCall':
      beginCall(command);
      break;
    case 'prepare':
      warmUp(command);
      break;
    case 'looking':
      warmUp(command);
      if (aheadOn) ahead.looking();
      break;
    case 'endCall':
      endCall(command.next && aheadOn);
      break;
    case 'idle':
      ahead.done();
      coolDown();
      break;
    case 'signalingRestored':
      signaling.releaseAbandoned();
      if (call) call.signalingRestored(command.networkChanged);
      break;
    case 'clearLog':
      view.clearLog();
      break;
    case 'line':
      view.addLine('system', '', command.text);
      break;
    case 'log':
      console.info(command.text);
      break;
    default:
      console.warn('strangers: unknown command', command.type);
  }
}

/** Makes the next call's connection, unless a fit one is ready (same route, not too old). */
function warmUp({ iceServers, relayOnly }) {
  if (!aheadOn) return;
  if (warm && (warm.relayOnly !== relayOnly || clock.now() - warm.madeAt > WARM_MAX_AGE_MS)) coolDown();
  if (!warm) warm = new Warm({ iceServers, relayOnly, localStream: media.stream, now: clock.now() });
}

/** Drops the connection made ahead, if any. */
function coolDown() {
  if (warm) warm.close();
  warm = null;
}

/** The warm connection for a call on this route, taken out; null if none fits. */
function takeWarm(relayOnly) {
  const fit = fitsCall(warm, relayOnly, clock.now()) ? warm : null;
  if (!fit) coolDown();
  warm = null;
  return fit ? fit.take() : null;
}

function beginCall({ room, role, common, sameLang, iceServers, relayOnly, offer, offered }) {
  ahead.done();
  // Named in the page's language, as the rest of the page.
  const shared = sameLang && lang ? languageName(lang, document.documentElement.lang || navigator.language) : '';
  if (textMode) {
    chat.setRoom(room);
    view.beginCall(common, shared);
    gate.settled();
    return;
  }
  // What waits for this call to be set up (see settleAfter): the connection made ahead for
  // the next one, and the solve of the next challenge.
  const settle = settleAfter(() => call === thisCall, () => {
    warmUp({ iceServers, relayOnly });
    gate.settled();
  });
  const thisCall = new Call({
    warm: takeWarm(relayOnly),
    offered,
    room,
    role,
    iceServers,
    relayOnly,
    localStream: media.stream,
    send,
    tracker,
    onRemoteStream: (stream) => {
      view.showRemote(stream);
      settle.watch();
    },
    onState: (state) => {
      if (call !== thisCall) return;
      session.peerState(state);
      if (state === 'connected') settle.connected();
    },
    onRemoteMedia: () => {
      if (call !== thisCall) return;
      if (thisCall.remoteStream.getTracks().length) view.playRemote();
      session.remoteVideo(thisCall.hasRemoteVideo());
    },
    onHealth: () => {
      if (call === thisCall) session.callHealth(thisCall.stalled);
    },
  });
  call = thisCall;
  // The stranger's early offer: as if it had been relayed.
  if (offer) thisCall.handle({ type: 'offer', room, sdp: offer });
  chat.setRoom(room);
  view.beginCall(common, shared);
  loadSafetyModel();
  safety.beginCall();
  if (!thisCall.pc) session.videoUnsupported();
}

// How long after "connected" a call with no picture (a stranger without a camera) counts as
// set up anyway.
const NO_PICTURE_SETTLE_MS = 1000;

/**
 * Runs `then` once, when the call (while `current()`) is set up: its first picture shown,
 * or NO_PICTURE_SETTLE_MS after it connected without one. Work that can wait (making the
 * next call's connection, solving the next challenge) would otherwise take CPU from the
 * answer, ICE, DTLS and the first keyframe, which are the time to the stranger's face.
 * `watch()`: the stranger's stream is shown (watch for its picture); `connected()`: the
 * peer connection is. For a call that ends first, the gate's own SETTLE_MS ends the wait.
 */
function settleAfter(current, then) {
  let done = false;
  let cancel = () => {};
  let timer = null;
  const settle = () => {
    if (done || !current()) return;
    done = true;
    cancel();
    if (timer !== null) clearTimeout(timer);
    then();
  };
  return {
    watch() {
      if (done) return;
      cancel();
      cancel = view.afterPicture(settle);
    },
    connected() {
      if (!done && timer === null) timer = setTimeout(settle, NO_PICTURE_SETTLE_MS);
    },
  };
}

/** Ends the current call; `later`: its peer connection is closed off the path to the next. */
function endCall(later = false) {
  const ended = call;
  call = null;
  chat.setRoom(null);
  if (ended) ended.close({ later });
  view.endCall(ended ? ended.remoteStream : null);
  safety.endCall();
}

// ---------------------------------------------------------------- the safety gate

/** Shows the gate's view, and checks frames exactly while the gate wants checks. */
function showSafety() {
  view.renderSafety(safety.view(), SAFETY_TEXT);
  if (safety.checking && !classifier.running) classifier.start();
  else if (!safety.checking && classifier.running) classifier.stop();
}

/** The model is downloaded when a call is about to start or starts, never for the page alone. */
function loadSafetyModel() {
  // A text chat page has no video to check.
  if (!textMode && safety.wantsModel) classifier.load();
}

// ---------------------------------------------------------------- wiring

function wireSignaling() {
  // Before the session's own handlers: its join on a new socket waits in the gate for the
  // welcome's challenge.
  signaling.on('welcome', (message) => gate.welcome(message));
  // Waiting, with nobody to set a call up with: the time to solve the next challenge.
  signaling.on('waiting', () => gate.settled());
  signaling.on('challenge', (message) => gate.challenge(message));
  signaling.on('down', () => gate.socketDown());
  for (const type of ['welcome', 'online', 'waiting', 'matched', 'resumed', 'left', 'media']) {
    signaling.on(type, (message) => session.receive(message));
  }
  // A refusal at the gate is the gate's to retry; one it gives up on is said in the page's
  // language (the server's message is the protocol's English).
  signaling.on('error', (message) => {
    if (gate.refused(message)) return;
    const refusal = gateRefusal(message.code);
    if (refusal) session.notify(refusal);
    else session.receive(message);
  });
  for (const type of ['offer', 'answer', 'candidate']) {
    signaling.on(type, (message) => {
      if (call) call.handle(message);
    });
  }
  for (const type of ['chat', 'typing']) signaling.on(type, (message) => chat.receive(message));
  signaling.on('open', (event) => session.socketOpen(event));
  signaling.on('down', (event) => session.socketDown(event));
  signaling.on('status', ({ status }) => session.socketStatus(status));
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
    if (typeof ui.reportDialog.showModal !== 'function') session.closeReport(); // no <dialog> support
    return;
  }
  // Esc while typing a message must not skip the stranger.
  if (event.target === ui.input || isTextField(event.target)) return;
  if (ui.next.disabled) return;
  event.preventDefault();
  session.next();
}

function onChatSubmit(event) {
  event.preventDefault();
  const { sent, notice } = chat.submit(ui.input.value);
  if (sent) ui.input.value = '';
  else if (notice) session.notify(notice);
}

function onReportSubmit(event) {
  event.preventDefault(); // the session closes the dialog
  session.report(view.reportReason());
}

function toggleMedia(kind) {
  if (media.toggle(kind)) session.localMediaChanged();
}

function wirePage() {
  // Long-lived page controls: registered once, never removed, not counted.
  adult.checked = gate.confirmed;
  adult.addEventListener('change', () => {
    gate.confirm(adult.checked);
    session.confirmationChanged();
  });
  ui.start.addEventListener('click', () => {
    loadSafetyModel();
    session.start();
  });
  ui.next.addEventListener('click', () => session.next());
  ui.stop.addEventListener('click', () => session.stop());
  // A text chat page has no camera buttons and no video.
  ui.mute?.addEventListener('click', () => toggleMedia('audio'));
  ui.camera?.addEventListener('click', () => toggleMedia('video'));
  ui.form.addEventListener('submit', onChatSubmit);
  ui.input.addEventListener('input', () => chat.input(ui.input.value));
  ui.remoteVideo?.addEventListener('click', () => {
    safety.tap();
    view.unmuteRemote();
  });
  if (ui.switchMode) ui.switchMode.href = switchUrl();
  ui.safetyShow.addEventListener('click', () => safety.tap());
  ui.safetyNext.addEventListener('click', () => session.next());
  ui.safetyReport.addEventListener('click', () => session.openReport());
  ui.blurSafe.addEventListener('change', () => {
    prefs.blurUntilSafe = ui.blurSafe.checked;
    safety.setEnabled(ui.blurSafe.checked);
    if (session.room) loadSafetyModel();
  });
  ui.autoSkipUnsafe.addEventListener('change', () => {
    prefs.autoSkipUnsafe = ui.autoSkipUnsafe.checked;
    safety.setAutoSkip(ui.autoSkipUnsafe.checked);
  });
  ui.autoNext.addEventListener('change', () => session.setAutoNext(ui.autoNext.checked));
  ui.hideIp.addEventListener('change', () => {
    prefs.hideIp = ui.hideIp.checked;
    session.setHideIp(ui.hideIp.checked);
  });
  ui.report.addEventListener('click', () => session.openReport());
  ui.reportForm.addEventListener('submit', onReportSubmit);
  ui.reportCancel.addEventListener('click', () => session.closeReport());
  // Esc (or the browser) closed the dialog.
  ui.reportDialog.addEventListener('close', () => session.closeReport());
  document.addEventListener('keydown', onKeyDown);
  window.addEventListener('pagehide', (event) => {
    if (event.persisted) return; // kept in the back/forward cache: pageshow reloads
    leavePage();
  });
  // When its last window closes, Firefox fires pagehide only seconds later (it is quitting),
  // but beforeunload at once: leave then, so the stranger is told without that wait. Nothing
  // on this page cancels an unload, so the page is going away (or into the back/forward
  // cache, from which pageshow reloads it).
  window.addEventListener('beforeunload', leavePage);
  window.addEventListener('pageshow', (event) => {
    // A page restored from the back/forward cache has dead sockets and calls.
    if (event.persisted) window.location.reload();
  });
}

/** The other mode's chat page, starting at once, with our interests and language. */
function switchUrl() {
  const params = new URLSearchParams({ mode: textMode ? 'video' : 'text', speak: lang, start: '1' });
  if (interests.length) params.set('interests', interests.join(', '));
  return `/chat?${params}`;
}

/** The page is going away: end the call and close the socket (the server tells the stranger). */
function leavePage() {
  endCall();
  coolDown();
  signaling.close();
}

function exposeTestHook() {
  window.__strangers = {
    get state() {
      return session.state;
    },
    get room() {
      return session.room;
    },
    get role() {
      return session.role;
    },
    /** "video" or "text": which chat page this is. */
    get mode() {
      return session.mode;
    },
    get pc() {
      return call ? call.pc : null;
    },
    /** The 18+ confirmation, and the proof of work's last solve ({bits, ms}). */
    get gate() {
      return { confirmed: gate.confirmed, holding: gate.holding, lastSolve: gate.lastSolve };
    },
    /** "Hide my IP" is checked: calls go through the relay whenever the server offers one. */
    get hideIp() {
      return ui.hideIp.checked;
    },
    /** The safety check's own numbers, for the benchmarks (the tests look at the page). */
    get safety() {
      return { model: safety.model, verdict: safety.verdict, threshold: unsafeThreshold, ...classifier.stats };
    },
    debug() {
      return {
        peerConnections: openPeerConnectionCount(),
        // The next call's, made ahead (never more than one).
        warmPeerConnections: warm && warm.pc ? 1 : 0,
        earlyOffers: ahead.sent,
        collided: call ? call.collided : false,
        remoteTracks: call ? call.remoteTrackCount() : 0,
        localTracks: media ? media.liveTrackCount() : 0,
        listeners: tracker.listenerCount,
        timers: tracker.timerCount,
      };
    },
  };
}

function main() {
  exposeTestHook();
  wireSignaling();
  wirePage();
  view.render(session.view());
  showSafety();
  signaling.connect();
  if (prefs.startAtOnce()) {
    loadSafetyModel(); // Start was pressed on the landing page
    session.start();
  }
  if (!gate.confirmed) session.notify(GATE_TEXT.confirmFirst);
}

main();
