// The overlay on the stranger's video (or, on a text chat page, on the frame where it would
// be): what is happening while there is no picture to show, for each state of the session.
// A pure function of that state: the session hands it in, the view shows what comes back.

import { TEXT } from './words.js';

/**
 * @param {object} s
 * @param {'idle'|'waiting'|'connecting'|'connected'} s.phase
 * @param {boolean} s.active  the user wants to be looking or talking
 * @param {boolean} s.text  a text chat (no picture, ever)
 * @param {string} s.ban  what the page says about a ban, "" for none
 * @param {string} s.pauseNotice  what the pause before auto-next says
 * @param {boolean} s.mediaReady  the camera question is answered
 * @param {string} s.mediaProblem  why we have no camera or microphone, "" for none
 * @param {{stalled: boolean, remoteVideo: boolean, remoteMedia: {video: boolean}}|null} s.call
 * @returns {{main: string, info: string, sub: string}}
 */
export function videoNotice({ phase, active, text, ban, pauseNotice, mediaReady, mediaProblem, call }) {
  const cameraOff = call !== null && call.remoteMedia.video === false;
  let main = '';
  if (phase === 'idle') {
    // Idle but active: the short pause before auto-next joins again.
    if (ban) main = ban;
    else main = active ? pauseNotice : TEXT.idle;
  } else if (phase === 'waiting') {
    main = mediaReady ? TEXT.looking : TEXT.starting;
  } else if (text) {
    // No picture to cover: the frame says what is going on.
    main = phase === 'connecting' ? TEXT.connecting : TEXT.textConnected;
  } else if (phase === 'connecting') {
    main = TEXT.connecting;
  } else if (call && call.stalled) {
    main = TEXT.interrupted;
  } else if (cameraOff) {
    main = TEXT.remoteCameraOff;
  } else if (call && !call.remoteVideo) {
    main = TEXT.noRemoteVideo;
  }
  const showingVideo = phase === 'connected' && main === '';
  return {
    main,
    // Still connecting, but already told the stranger's camera is off.
    info: phase === 'connecting' && cameraOff ? TEXT.remoteCameraOff : '',
    // Our own media problem stays visible until the stranger's picture covers it.
    sub: showingVideo ? '' : mediaProblem,
  };
}
