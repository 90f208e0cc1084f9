//! What the harness knows of strangers' pages: the test hook `window.__strangers`, the
//! in-page expressions that say a call shows video, and the recorder that timestamps what a
//! page does (for the benchmark and the restart and TURN tests).

use std::time::Duration;

use serde_json::{Value, json};

use super::page::Page;

/// A JavaScript expression (for [`Page::wait_for`]) that is truthy once this page is in a
/// call whose peer connection is connected, whose incoming video has decoded frames and
/// whose `#remote-video` shows a picture; its value is `{room, frames, width, height}`.
pub const VIDEO_FLOWING: &str = r#"await (async () => {
  const s = window.__strangers;
  const pc = s && s.pc;
  if (!pc || pc.connectionState !== 'connected') return false;
  let frames = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
  });
  const video = document.getElementById('remote-video');
  if (!(frames > 0 && video.videoWidth > 0)) return false;
  return { room: s.room, role: s.role, frames, width: video.videoWidth, height: video.videoHeight };
})()"#;

impl Page {
    /// Waits until this page shows the stranger's video; returns the room id.
    pub async fn wait_video(&self, timeout: Duration) -> String {
        let v = self
            .wait_for(
                VIDEO_FLOWING,
                "a connected call decoding the stranger's video",
                timeout,
            )
            .await;
        v["room"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no room in {v}", self.name))
            .to_string()
    }

    /// `window.__strangers.debug()`.
    pub async fn debug_counts(&self) -> Value {
        self.eval("window.__strangers.debug()").await
    }

    /// Waits until the chat log has a line containing `text`.
    pub async fn wait_log_line(&self, text: &str, timeout: Duration) {
        let condition = format!(
            "[...document.querySelectorAll('#chat-log li')].some((li) => li.textContent.includes({}))",
            json!(text)
        );
        self.wait_for(
            &condition,
            &format!("a chat log line with {text:?}"),
            timeout,
        )
        .await;
    }
}

/// An in-page recorder, installed with [`Page::install_recorder`] before the app's scripts
/// run (on every document the page loads). It only observes; the app is unchanged. It keeps,
/// in `window.__rec`, with times in epoch milliseconds (`performance.timeOrigin +
/// performance.now()`, sub-millisecond and comparable across browsers on one machine):
///
/// - `clicks`: every click on a button or input (`{id, t, done}`: `t` the event's own
///   timestamp, `done` when the page's click handlers had run, unless one stopped it);
/// - `msgs`: every signaling message the page received (`{type, t, room, candidate, sdp}`,
///   `candidate` the ICE candidate line of a `candidate` message), and the events of every
///   WebSocket the page opened (`{type: "_open" | "_close", t, code}`);
/// - `sent`: the type and time of every message the page sent (`{type, t}`);
/// - `pcs`: every `RTCPeerConnection`, as `{created, policy, states, ice, added, sdps,
///   errors, firstCandidate}`: its `iceTransportPolicy`, its `connectionState` and
///   `iceConnectionState` changes (`{s, t}`), the candidate lines given to its
///   `addIceCandidate`, the SDPs given to its `setRemoteDescription`, its
///   `icecandidateerror` events (`{code, text, url}`) and when it gathered its first local
///   candidate; `window.__recPcs` holds the objects themselves, for `getStats()`;
/// - `frames`: the first picture `#remote-video` presented in each room (`{room, t,
///   receive}`, from `requestVideoFrameCallback`: `t` the frame's presentation time,
///   `receive` when its last packet arrived), and `frameCount`, pictures presented so far.
/// - `clear`: when the safety blur first came off the video in each room (`{room, t}`: the
///   stranger's face shown as it is).
pub const RECORDER: &str = r#"(() => {
  if (window.__rec) return;
  const now = () => performance.timeOrigin + performance.now();
  const rec = (window.__rec = { clicks: [], msgs: [], sent: [], pcs: [], frames: [], frameCount: 0, clear: [] });
  const pcs = (window.__recPcs = []);
  let lastClick = null;
  document.addEventListener('click', (e) => {
    const el = e.target && e.target.closest ? e.target.closest('button, input') : null;
    lastClick = { id: el ? el.id : '', t: performance.timeOrigin + e.timeStamp, done: null };
    rec.clicks.push(lastClick);
  }, true);
  // Bubbling to the window comes after the app's own click handlers have run.
  window.addEventListener('click', () => { if (lastClick) lastClick.done = now(); });
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('open', () => rec.msgs.push({ type: '_open', t: now() }));
      this.addEventListener('close', (e) => rec.msgs.push({ type: '_close', t: now(), code: e.code }));
      this.addEventListener('message', (e) => {
        const t = now();
        let m;
        try { m = JSON.parse(e.data); } catch { return; }
        if (!m || typeof m.type !== 'string' || m.type === 'online') return;
        rec.msgs.push({
          type: m.type, t, room: m.room || null,
          candidate: m.type === 'candidate' ? (m.candidate ? m.candidate.candidate : null) : undefined,
          sdp: typeof m.sdp === 'string' ? m.sdp : undefined,
        });
      });
    }
    send(data) {
      try {
        const m = JSON.parse(data);
        const sent = { type: m.type, t: now() };
        // What a join or Next asks for, and what it carries through the gate.
        if (m.type === 'join' || m.type === 'next') Object.assign(sent, { mode: m.mode, lang: m.lang, adult: m.adult, pow: m.pow });
        rec.sent.push(sent);
      } catch { /* not JSON */ }
      return super.send(data);
    }
  };
  const NativePeerConnection = window.RTCPeerConnection;
  if (typeof NativePeerConnection === 'function') {
    window.RTCPeerConnection = class extends NativePeerConnection {
      constructor(config, ...rest) {
        super(config, ...rest);
        const entry = { created: now(), policy: (config && config.iceTransportPolicy) || 'all', states: [], ice: [], added: [], sdps: [], errors: [], firstCandidate: null };
        this.__rec = entry;
        rec.pcs.push(entry);
        pcs.push(this);
        this.addEventListener('connectionstatechange', () => entry.states.push({ s: this.connectionState, t: now() }));
        this.addEventListener('icecandidateerror', (e) => entry.errors.push({ code: e.errorCode, text: e.errorText, url: e.url }));
        this.addEventListener('iceconnectionstatechange', () => entry.ice.push({ s: this.iceConnectionState, t: now() }));
        this.addEventListener('icecandidate', (e) => { if (e.candidate && entry.firstCandidate === null) entry.firstCandidate = now(); });
      }
      addIceCandidate(candidate, ...rest) {
        if (this.__rec && candidate && candidate.candidate) this.__rec.added.push(candidate.candidate);
        return super.addIceCandidate(candidate, ...rest);
      }
      setRemoteDescription(description, ...rest) {
        if (this.__rec && description && description.sdp) this.__rec.sdps.push(description.sdp);
        return super.setRemoteDescription(description, ...rest);
      }
    };
  }
  const watchFrames = () => {
    const video = document.getElementById('remote-video');
    if (!video || typeof video.requestVideoFrameCallback !== 'function') return;
    let lastRoom = null;
    const onFrame = (_now, meta) => {
      rec.frameCount += 1;
      const s = window.__strangers;
      const room = s ? s.room : null;
      if (room && room !== lastRoom) {
        lastRoom = room;
        rec.frames.push({
          room,
          t: performance.timeOrigin + meta.presentationTime,
          receive: meta.receiveTime ? performance.timeOrigin + meta.receiveTime : null,
        });
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  // When the safety blur comes off a call's video (its first verdict: safe).
  const watchBlur = () => {
    const frame = document.getElementById('video-frame');
    if (!frame) return;
    new MutationObserver(() => {
      const s = window.__strangers;
      const room = s ? s.room : null;
      if (room && !frame.classList.contains('safety-blur') && !rec.clear.some((c) => c.room === room)) {
        rec.clear.push({ room, t: now() });
      }
    }).observe(frame, { attributes: true, attributeFilter: ['class'] });
  };
  const watch = () => { watchFrames(); watchBlur(); };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watch);
  else watch();
})();"#;

/// A JavaScript expression: the number of video frames this page's current call has
/// decoded so far (0 without a call).
pub const FRAMES_DECODED: &str = r#"await (async () => {
  const pc = window.__strangers && window.__strangers.pc;
  if (!pc) return 0;
  let frames = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
  });
  return frames;
})()"#;

impl Page {
    /// Ticks "I am 18 or older and agree to the rules" on the landing page, as a user does
    /// before a first Start, and waits until the browser remembers it.
    pub async fn confirm_adult(&self) {
        let base = self.base.clone();
        self.confirm_adult_at(&base).await;
    }

    /// [`confirm_adult`](Self::confirm_adult) on the site at `base`, another server than the
    /// page's own: another origin, whose storage remembers its own confirmation.
    pub async fn confirm_adult_at(&self, base: &str) {
        self.open_url(&format!("{base}/")).await;
        self.click_css("#adult").await;
        self.wait_for(
            "localStorage.getItem('strangers.adult') === '1'",
            "the 18+ confirmation remembered",
            Duration::from_secs(5),
        )
        .await;
    }

    /// Installs [`RECORDER`] for every document loaded from now on (call before `open`).
    pub async fn install_recorder(&self) {
        self.add_init_script(RECORDER).await;
    }

    /// The recorder's `window.__rec` (see [`RECORDER`]).
    pub async fn recorded(&self) -> Value {
        self.eval("window.__rec || null").await
    }

    /// The number of video frames the current call has decoded ([`FRAMES_DECODED`]).
    pub async fn frames_decoded(&self) -> u64 {
        self.eval(FRAMES_DECODED).await.as_u64().unwrap_or(0)
    }
}
