// Our own camera and microphone: asking the browser for them once per page, the local
// preview, the Mute mic / Camera off toggles, and the words for what is missing.

import { t } from './i18n.js';

function describeError(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return t('client.media_denied');
    case 'NotFoundError':
    case 'OverconstrainedError':
      return t('client.media_none');
    case 'NotReadableError':
    case 'AbortError':
      return t('client.media_busy');
    default:
      return (err && err.message) || t('client.media_unavailable');
  }
}

/** "No camera: permission denied. The stranger can still hear you." */
function problemText(what, reason) {
  if (what === 'camera') return t('client.no_camera', { reason });
  if (what === 'microphone') return t('client.no_microphone', { reason });
  return t('client.no_camera_microphone', { reason });
}

const live = (track) => track.readyState === 'live';

export class Media {
  /** @type {MediaStream|null} kept for the whole page, across calls */
  stream = null;
  #ui;
  #mediaDevices;
  /** @type {Promise<string>|null} getUserMedia, asked once per page */
  #asked = null;

  /**
   * @param {object} ui  the #local-video element, the #video-frame around it, and the
   *   #mute and #camera buttons
   * @param {MediaDevices|undefined} mediaDevices  navigator.mediaDevices
   */
  constructor({ localVideo, frame, mute, camera }, mediaDevices) {
    this.#ui = { localVideo, frame, mute, camera };
    this.#mediaDevices = mediaDevices;
    this.#renderButtons();
  }

  /**
   * Asks for camera and microphone (once per page; later calls get the same answer).
   * Resolves to why we have no camera or microphone, "" when both work. Never rejects.
   */
  ensure() {
    if (!this.#asked) this.#asked = this.#acquire();
    return this.#asked;
  }

  /** Whether we are sending live, enabled video and audio (no device counts as off). */
  state() {
    const on = (tracks) => tracks.some((t) => t.enabled && live(t));
    const stream = this.stream;
    return {
      video: stream ? on(stream.getVideoTracks()) : false,
      audio: stream ? on(stream.getAudioTracks()) : false,
    };
  }

  liveTrackCount() {
    return this.stream ? this.stream.getTracks().filter(live).length : 0;
  }

  /** Turns the camera ("video") or microphone ("audio") on or off. Returns false if there is none. */
  toggle(kind) {
    const stream = this.stream;
    if (!stream) return false;
    const tracks = kind === 'audio' ? stream.getAudioTracks() : stream.getVideoTracks();
    if (!tracks.length) return false;
    const enable = !tracks[0].enabled;
    for (const track of tracks) track.enabled = enable;
    this.#renderButtons();
    return true;
  }

  async #acquire() {
    const devices = this.#mediaDevices;
    if (!devices || typeof devices.getUserMedia !== 'function') {
      return this.#problem('camera/microphone', t('client.media_insecure'));
    }
    let stream = null;
    let reason = '';
    try {
      stream = await devices.getUserMedia({ video: true, audio: true });
    } catch (err) {
      reason = describeError(err);
      console.info('strangers: camera and microphone unavailable:', err && err.name);
      // With one of the two missing, still use the other.
      if (err && ['NotFoundError', 'OverconstrainedError', 'NotReadableError'].includes(err.name)) {
        stream = await devices.getUserMedia({ audio: true }).catch(() => null);
        if (!stream) stream = await devices.getUserMedia({ video: true }).catch(() => null);
      }
    }
    if (stream) this.#preview(stream);
    this.#renderButtons();
    const hasAudio = Boolean(stream && stream.getAudioTracks().length);
    const hasVideo = Boolean(stream && stream.getVideoTracks().length);
    if (!hasAudio && !hasVideo) return this.#problem('camera/microphone', reason || t('client.media_unavailable'));
    if (!hasVideo) return this.#problem('camera', reason || t('client.media_none'));
    if (!hasAudio) return this.#problem('microphone', reason || t('client.media_none'));
    return '';
  }

  #preview(stream) {
    const { localVideo, frame } = this.#ui;
    this.stream = stream;
    localVideo.srcObject = stream;
    localVideo.play().catch(() => {}); // autoplay+muted normally suffices
    frame.classList.add('has-local');
  }

  #problem(what, reason) {
    this.#ui.frame.classList.toggle('no-local-video', what !== 'microphone');
    return problemText(what, reason);
  }

  #renderButtons() {
    const { mute, camera, frame } = this.#ui;
    const stream = this.stream;
    const audio = stream ? stream.getAudioTracks()[0] : undefined;
    const video = stream ? stream.getVideoTracks()[0] : undefined;
    mute.disabled = !audio;
    camera.disabled = !video;
    mute.setAttribute('aria-pressed', String(Boolean(audio && !audio.enabled)));
    camera.setAttribute('aria-pressed', String(Boolean(video && !video.enabled)));
    frame.classList.toggle('local-camera-off', !video || !video.enabled);
  }
}
