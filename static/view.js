// The chat page's DOM, apart from our own camera (media.js): the status line, the notice
// over the video, the controls, the chat log and typing line, the call clock and the
// stranger's video. It shows what the session and the chat decided; it decides nothing.

import { t } from './i18n.js';

const FLASH_MS = 900;

// Between the parts of the line over the chat that says what the two strangers share.
const SEPARATOR = ' · ';

function formatClock(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  return `${String(minutes).padStart(2, '0')}:${String(seconds).padStart(2, '0')}`;
}

/** Sets an element's text only when it changes (a live region re-announces every write). */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export class View {
  ui;
  #tracker;
  #noticeKey = null;
  #reportShown = false;
  #clockTimer = null;
  #flashTimer = null;

  /**
   * @param {Document} doc
   * @param {import('./signaling.js').Tracker} tracker  counts the view's timers
   */
  constructor(doc, tracker) {
    const $ = (id) => doc.getElementById(id);
    this.#tracker = tracker;
    this.ui = {
      body: doc.body,
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
      blurSafe: $('blur-safe'),
      autoSkipUnsafe: $('auto-skip-unsafe'),
      safetyNotice: $('safety-notice'),
      safetyText: $('safety-text'),
      safetySub: $('safety-sub'),
      safetyNext: $('safety-next'),
      safetyReport: $('safety-report'),
      safetyShow: $('safety-show'),
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
      switchMode: $('switch-mode'),
    };
  }

  /** Shows the session's view (see Session.view()). */
  render(view) {
    const ui = this.ui;
    ui.body.dataset.state = view.state;
    setText(ui.status, view.status);
    ui.start.disabled = !view.controls.start;
    ui.next.disabled = !view.controls.next;
    ui.stop.disabled = !view.controls.stop;
    ui.input.disabled = !view.controls.chat;
    ui.send.disabled = !view.controls.chat;
    ui.report.hidden = !view.controls.chat;
    ui.report.disabled = !view.controls.chat;
    this.#renderNotice(view.notice);
    ui.remoteMuted.hidden = !view.remoteMuted;
    ui.selfUnseen.hidden = !view.selfUnseen;
    // The checkbox is offered when there is a relay to hide behind (or while it is on without one).
    ui.hideIpLabel.hidden = !view.hideIpOffered;
    ui.hideIp.hidden = !view.hideIpOffered;
    setText(ui.conn, view.connection.label);
    ui.conn.dataset.status = view.connection.status;
    if (view.online) setText(ui.online, view.online);
    this.#renderReportDialog(view.reporting);
  }

  #renderNotice({ main, info, sub }) {
    const key = JSON.stringify([main, info, sub]);
    if (key === this.#noticeKey) return;
    this.#noticeKey = key;
    const notice = this.ui.notice;
    notice.replaceChildren();
    if (main) notice.append(this.#textBlock('notice-main', main));
    if (info) notice.append(this.#textBlock('notice-info', info));
    if (sub) notice.append(this.#textBlock('notice-sub', sub));
    notice.hidden = notice.childElementCount === 0;
  }

  #textBlock(className, text) {
    const p = this.ui.notice.ownerDocument.createElement('p');
    p.className = className;
    p.textContent = text;
    return p;
  }

  #renderReportDialog(open) {
    const dialog = this.ui.reportDialog;
    // Opened once per Report press: a dialog the browser has just closed (Esc) is not
    // opened again before its close event reaches the session.
    const opening = open && !this.#reportShown;
    this.#reportShown = open;
    if (opening && !dialog.open) {
      this.ui.reportForm.reset();
      if (typeof dialog.showModal === 'function') dialog.showModal();
      else dialog.setAttribute('open', ''); // very old browsers: a plain, non-modal box
    } else if (!open && dialog.open) {
      if (typeof dialog.close === 'function') dialog.close();
      else dialog.removeAttribute('open');
    }
  }

  /** The reason picked in the report dialog (the radios are required, so one is). */
  reportReason() {
    return new FormData(this.ui.reportForm).get('reason');
  }

  // ------------------------------------------------------------ chat log

  /** Adds a line: `kind` "you", "stranger" or "system"; `who` the name before it, if any. */
  addLine(kind, who, text) {
    const log = this.ui.log;
    const doc = log.ownerDocument;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const li = doc.createElement('li');
    li.className = `msg ${kind}`;
    if (who) {
      const name = doc.createElement('span');
      name.className = 'who';
      name.textContent = `${who}:`;
      li.append(name, ' ');
    }
    li.append(text); // a text node: user text never becomes markup
    log.append(li);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  clearLog() {
    this.ui.log.replaceChildren();
  }

  showTyping(active) {
    this.ui.typing.hidden = !active;
  }

  // ------------------------------------------------------------ a call

  /**
   * A call began: the interests we share (and the language, its name in `language`, if we
   * share it), a flash of the frame, the call clock from 00:00.
   */
  beginCall(common, language = '') {
    this.#showCommon(common, language);
    this.#flashFrame();
    this.#startClock();
  }

  /** The call ended: no clock, no shared interests, no stranger's video. */
  endCall(remoteStream) {
    this.#stopClock();
    this.#showCommon([]);
    this.ui.frame.classList.remove('sound-blocked');
    const video = this.ui.remoteVideo;
    if (remoteStream && video.srcObject === remoteStream) video.srcObject = null;
  }

  #showCommon(common, language = '') {
    const list = Array.isArray(common) ? common.filter((c) => typeof c === 'string' && c) : [];
    const parts = [];
    if (language) parts.push(t('client.both_speak', { language }));
    if (list.length) parts.push(t('client.common', { interests: list.join(', ') }));
    this.ui.common.textContent = parts.join(SEPARATOR);
    this.ui.common.hidden = parts.length === 0;
  }

  #flashFrame() {
    const frame = this.ui.frame;
    frame.classList.remove('flash');
    void frame.offsetWidth; // restart the CSS animation
    frame.classList.add('flash');
    this.#flashTimer = this.#tracker.clear(this.#flashTimer);
    this.#flashTimer = this.#tracker.timeout(() => {
      this.#flashTimer = null;
      frame.classList.remove('flash');
    }, FLASH_MS);
  }

  #startClock() {
    const startedAt = Date.now();
    const callTime = this.ui.callTime;
    callTime.textContent = '00:00';
    callTime.hidden = false;
    this.#clockTimer = this.#tracker.clear(this.#clockTimer);
    this.#clockTimer = this.#tracker.interval(() => {
      callTime.textContent = formatClock(Date.now() - startedAt);
    }, 1000);
  }

  #stopClock() {
    this.#clockTimer = this.#tracker.clear(this.#clockTimer);
    this.ui.callTime.hidden = true;
  }

  // ------------------------------------------------------------ the stranger's video

  /** The call has the stranger's stream: show it in the big video. */
  showRemote(stream) {
    if (this.ui.remoteVideo.srcObject !== stream) this.ui.remoteVideo.srcObject = stream;
  }

  /**
   * Calls `fn` once the stranger's video presents its next picture (the first of the stream
   * just shown); returns what cancels it. Without requestVideoFrameCallback, its first data.
   */
  afterPicture(fn) {
    const video = this.ui.remoteVideo;
    if (!video) return () => {};
    if (typeof video.requestVideoFrameCallback === 'function') {
      const handle = video.requestVideoFrameCallback(() => fn());
      return () => video.cancelVideoFrameCallback(handle);
    }
    const once = () => fn();
    video.addEventListener('loadeddata', once, { once: true });
    return () => video.removeEventListener('loadeddata', once);
  }

  /** Plays the stranger's video, with sound if the browser lets us. */
  playRemote() {
    const video = this.ui.remoteVideo;
    // After any click on the page the browser lets us play with sound.
    if (video.muted && navigator.userActivation && navigator.userActivation.hasBeenActive) video.muted = false;
    const attempt = video.play();
    if (!attempt) return;
    attempt.catch((err) => {
      if (err && err.name === 'NotAllowedError' && !video.muted) {
        // Autoplay with sound was refused: play muted and let a tap unmute.
        video.muted = true;
        this.ui.frame.classList.add('sound-blocked');
        video.play().catch(() => {});
      }
      // AbortError just means the source changed (a new call); nothing to do.
    });
  }

  /**
   * Shows the safety gate's view (see SafetyGate.view()): the blur over the stranger's video
   * and the notice with its buttons. `text` holds the buttons' labels.
   */
  renderSafety({ blurred, notice }, text) {
    const ui = this.ui;
    ui.frame.classList.toggle('safety-blur', blurred);
    ui.safetyNotice.hidden = !notice;
    if (!notice) return;
    ui.safetyNotice.dataset.kind = notice.kind;
    setText(ui.safetyText, notice.text);
    setText(ui.safetySub, notice.sub);
    const buttons = { next: ui.safetyNext, report: ui.safetyReport, show: ui.safetyShow };
    for (const [action, button] of Object.entries(buttons)) {
      setText(button, text[action]);
      button.hidden = !notice.actions.includes(action);
    }
  }

  /** A tap on the stranger's video after autoplay with sound was refused. */
  unmuteRemote() {
    const video = this.ui.remoteVideo;
    if (!video.muted) return;
    video.muted = false;
    this.ui.frame.classList.remove('sound-blocked');
    video.play().catch(() => {});
  }
}
