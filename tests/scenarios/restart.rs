//! A deploy in the middle of a call: A and B are talking when the server restarts (every
//! client is told `bye` and closed with 1012; a new server takes the same port). The video
//! goes browser to browser, so it must not notice, and both pages get back on the
//! signaling channel by themselves, get their room back and chat in it; a Next afterwards
//! works on the new server. Run by
//! `tests/browser_restart.rs` (two Chromiums) and `tests/browser_firefox.rs` (Chromium and
//! Firefox, and two Firefoxes).

use std::time::Instant;

use serde_json::Value;

use crate::browser_harness::{
    self as harness, Browser, Engine, LocalServer, Media, PATIENCE, Page, Tools,
    assert_no_console_errors,
};
use crate::common;

/// The page's call right now: `{room, pc, frames}`.
async fn call_state(page: &Page) -> Value {
    page.eval(&format!(
        "({{ room: __strangers.room, pc: __strangers.pc && __strangers.pc.connectionState, \
            frames: {frames}, conn: document.getElementById('conn').textContent.trim() }})",
        frames = harness::FRAMES_DECODED
    ))
    .await
}

/// Samples, every 50 ms inside the page, the frames decoded and the state of the peer
/// connection the page has now, into `window.__restartSamples` (`{t, frames, state}`).
const SAMPLE_CALL: &str = r#"(() => {
  const pc = window.__strangers.pc;
  const samples = (window.__restartSamples = []);
  const id = setInterval(async () => {
    const t = performance.now();
    let frames = 0;
    try {
      (await pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
      });
    } catch {
      frames = null;
    }
    samples.push({ t, frames, state: pc.connectionState });
    if (samples.length >= 600) clearInterval(id);
  }, 50);
  return true;
})()"#;

/// From the samples: the longest time (ms) the call's frame count stood still, the states
/// seen and the frames decoded in all.
const SAMPLE_SUMMARY: &str = r#"(() => {
  const samples = window.__restartSamples || [];
  let stall = 0, since = samples.length ? samples[0].t : 0, last = -1;
  for (const s of samples) {
    if (s.frames !== null && s.frames > last) { last = s.frames; since = s.t; }
    stall = Math.max(stall, s.t - since);
  }
  return { samples: samples.length, stall: Math.round(stall), states: [...new Set(samples.map((s) => s.state))],
           first: samples.length ? samples[0].frames : null, last: samples.length ? samples.at(-1).frames : null };
})()"#;

/// The servers' flags: the token that lets `common::wait_waiting` read the queue's length.
const FLAGS: &[&str] = &["--metrics-token", common::METRICS_TOKEN];

/// A and B (in the engines given) are in a call decoding each other's video. The server
/// restarts: the old one says `bye` and closes every socket with 1012, a new one binds the
/// same port. Both pages must be back on the signaling channel by themselves (#conn says
/// Connected again), and the call, which never went through the server, must carry on
/// throughout: the same peer connection, connected all along, its frame count never
/// standing still for 1.5 s. Both get their room back (`resumed`) and text each other in
/// it. Then B presses Next and the new server matches the two again.
///
/// The checks are all made and then reported together, so one run shows which of them
/// hold.
pub async fn restart_keeps_the_call(tools: &Tools, engines: [Engine; 2]) {
    let server = LocalServer::start_on("127.0.0.1:0".parse().unwrap(), FLAGS).await;
    let addr = server.addr;
    let pages = Browser::launch_each(
        tools,
        &server.base(),
        &[
            (engines[0], "A", Media::Fake),
            (engines[1], "B", Media::Fake),
        ],
    )
    .await;
    let [a, b] = &pages[..] else { unreachable!() };
    for page in [a, b] {
        page.install_recorder().await;
    }
    a.open("/chat?start=1").await;
    common::wait_waiting(addr, 1, "A started").await;
    b.open("/chat?start=1").await;
    let (room_a, room_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    assert_eq!(room_a, room_b);
    // Mark this call's peer connection, to tell it from a new one after the restart (room
    // ids come from the seeded generator, so the new server's first room has the same id),
    // and start sampling it.
    let mut before = Vec::new();
    for page in [a, b] {
        page.eval("(__strangers.pc.__beforeRestart = true)").await;
        page.eval(SAMPLE_CALL).await;
        before.push(call_state(page).await);
    }

    // The deploy: the old server says goodbye and exits; a new one takes the same port.
    let t0 = Instant::now();
    server.shutdown().await;
    let stopped = t0.elapsed();
    let server = LocalServer::start_on(addr, FLAGS).await;
    harness::trace(&format!("restarted after {stopped:.2?}"));

    for page in [a, b] {
        back_on_the_new_server(page).await;
    }
    let mut problems = Vec::new();
    for (page, before) in [(a, &before[0]), (b, &before[1])] {
        problems.extend(call_went_on(page, before).await);
    }
    problems.extend(chat_in_the_resumed_room(a, b, &room_a).await);
    problems.extend(next_on_the_new_server(a, b).await);
    let errors = (a.console_errors().await, b.console_errors().await);
    drop(server);
    assert!(
        problems.is_empty(),
        "the server restart in mid-call:\n  {}",
        problems.join("\n  ")
    );
    assert!(
        errors.0.is_empty() && errors.1.is_empty(),
        "console errors: {errors:?}"
    );
    assert_no_console_errors(&[a, b]).await;
}

/// The page lost the socket (the bye, then 1012) and comes back to the new server.
async fn back_on_the_new_server(page: &Page) {
    let conn = page
        .wait_for(
            "document.getElementById('conn').dataset.status === 'connected' && \
             window.__rec.msgs.filter((m) => m.type === 'welcome').length >= 2 && \
             document.getElementById('conn').textContent.trim()",
            "the page back on the new server (a second welcome, #conn Connected)",
            PATIENCE,
        )
        .await;
    assert_eq!(conn, "Connected", "{}: #conn", page.name);
    let socket = page
        .eval("window.__rec.msgs.filter((m) => m.type === '_open' || m.type === '_close' || m.type === 'bye').map((m) => m.type + (m.code ? ' ' + m.code : ''))")
        .await;
    eprintln!("{}: signaling after the restart: {socket}", page.name);
}

/// Whether the call carried on throughout: the same peer connection, connected, decoding;
/// the problem if not.
async fn call_went_on(page: &Page, before: &Value) -> Option<String> {
    let frames_before = before["frames"].as_u64().unwrap_or(0);
    let after = page
        .wait_for(
            &format!(
                "await (async () => {{ const s = window.__strangers; \
                   if (!s.pc || !s.pc.__beforeRestart) return 'the call was ended: now ' + (s.pc ? 'another peer connection, ' + s.pc.connectionState : 'none') + ', state ' + s.state; \
                   const frames = {frames}; \
                   return frames > {frames_before} + 30 && s.pc.connectionState === 'connected' && {{ frames, pc: s.pc.connectionState }}; }})()",
                frames = harness::FRAMES_DECODED
            ),
            "the call still decoding frames after the restart",
            PATIENCE,
        )
        .await;
    let samples = page.eval(SAMPLE_SUMMARY).await;
    let states = page
        .eval("window.__rec.pcs.map((p) => p.states.map((s) => s.s))")
        .await;
    eprintln!(
        "{}: the call across the restart: {after}; sampled {samples}; peer connections' states {states}",
        page.name
    );
    if !after.is_object() {
        Some(format!(
            "{}: the call did not survive the server restart: {after} \
             (before: {before}; sampled: {samples}; every peer connection's states: {states})",
            page.name
        ))
    } else if samples["stall"].as_u64().unwrap_or(u64::MAX) >= 1500
        || samples["states"] != serde_json::json!(["connected"])
    {
        Some(format!(
            "{}: the call stalled or left \"connected\" across the restart: {samples}",
            page.name
        ))
    } else {
        None
    }
}

/// Both pages get their room back from the new server (`resumed`, not `left`), and then
/// text each other in it, the typing indicator included, both ways.
async fn chat_in_the_resumed_room(a: &Page, b: &Page, room: &str) -> Vec<String> {
    let outcome = format!(
        "(() => {{ const msgs = window.__rec.msgs; \
           if (msgs.some((m) => m.type === 'resumed' && m.room === {room:?})) return 'resumed'; \
           const back = msgs.findLastIndex((m) => m.type === 'welcome'); \
           return msgs.slice(back).some((m) => m.type === 'left') && 'left'; }})()"
    );
    let mut problems = Vec::new();
    for page in [a, b] {
        let seen = page
            .wait_for(
                &outcome,
                "the room back after the restart, or the call ended",
                PATIENCE,
            )
            .await;
        if seen != "resumed" {
            problems.push(format!("{}: room {room} not resumed: {seen}", page.name));
        }
    }
    if problems.is_empty() {
        super::chat_both_ways(a, b).await;
    }
    problems
}

/// B presses Next: the new server puts the two together again, in a new call.
async fn next_on_the_new_server(a: &Page, b: &Page) -> Vec<String> {
    let mut problems = Vec::new();
    b.click_button("Next").await;
    let (new_a, new_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    if new_a != new_b {
        problems.push(format!(
            "after B's Next, A and B are in different rooms: {new_a} and {new_b}"
        ));
    }
    for page in [a, b] {
        let fresh = page.eval("!__strangers.pc.__beforeRestart").await;
        if fresh != true {
            problems.push(format!("{}: after Next, still the old call", page.name));
        }
    }
    problems
}
