//! Steps of browser scenarios that hold whatever engines the pages run in: each takes pages
//! already launched (and the server's address where it needs the queue) and asserts what a
//! user would see. Used by `tests/browser_firefox.rs`, and by the Chromium tests where they
//! share a step.
#![allow(dead_code)] // each test binary uses a different part

pub mod restart;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::browser_harness::{self as harness, Browser, PATIENCE, Page};
use crate::common;
use fantoccini::key::Key;
use serde_json::{Value, json};

/// The chat log line (and status) after the stranger left.
pub const LEFT: &str = "Stranger has disconnected";

/// Waits until A and B are in the same new call (not `not_room`), connected and each
/// decoding the other's picture; returns their roles, which must be opposite.
pub async fn both_see_video(a: &Page, b: &Page, not_room: Option<&str>) -> (Value, Value) {
    let condition = format!(
        "await (async () => {{ const v = {}; return v && v.room !== {} && v; }})()",
        harness::VIDEO_FLOWING,
        json!(not_room)
    );
    let what = "a new call, connected, decoding the stranger's video";
    let (va, vb) = tokio::join!(
        a.wait_for(&condition, what, PATIENCE),
        b.wait_for(&condition, what, PATIENCE)
    );
    assert_eq!(va["room"], vb["room"], "A and B are in the same room");
    assert_ne!(va["role"], vb["role"], "one offerer, one answerer");
    harness::trace(&format!("video: A {va}, B {vb}"));
    (va["role"].clone(), vb["role"].clone())
}

/// Waits until `page` is in a room (matched, chat open); returns the room id.
pub async fn wait_room(page: &Page) -> String {
    let room = page
        .wait_for(
            "window.__strangers && window.__strangers.room && !document.getElementById('chat-input').disabled && window.__strangers.room",
            "being matched with a stranger (chat open)",
            PATIENCE,
        )
        .await;
    room.as_str().expect("room id").to_string()
}

/// Waits until `page` shows that the stranger is typing (`visible`) or not.
pub async fn wait_typing(page: &Page, visible: bool, timeout: Duration) {
    let (condition, what) = if visible {
        (
            "!document.getElementById('typing').hidden",
            "the \"Stranger is typing…\" indicator",
        )
    } else {
        (
            "document.getElementById('typing').hidden",
            "the typing indicator going away",
        )
    };
    page.wait_for(condition, what, timeout).await;
}

/// Waits until the chat log shows `who: text` as its own line (`class` "stranger" or
/// "you").
pub async fn wait_chat_line(page: &Page, class: &str, text: &str) {
    let condition = format!(
        "[...document.querySelectorAll('#chat-log li.msg.{class}')].some((li) => li.textContent.trim().endsWith(': ' + {}))",
        json!(text)
    );
    page.wait_for(
        &condition,
        &format!("a {class} chat line {text:?}"),
        PATIENCE,
    )
    .await;
}

/// A types: B sees "Stranger is typing…"; A sends with Enter: B sees the line (as text,
/// never markup), the indicator goes. Then B types and sends with the Send button, and A
/// sees the same.
pub async fn chat_both_ways(a: &Page, b: &Page) {
    let message = "Hello <b>stranger</b> ✋";
    a.type_into("#chat-input", message).await;
    wait_typing(b, true, PATIENCE).await;
    a.type_into("#chat-input", &Key::Enter.to_string()).await;
    wait_chat_line(b, "stranger", message).await;
    wait_chat_line(a, "you", message).await;
    wait_typing(b, false, PATIENCE).await;
    let markup = b
        .eval("document.querySelectorAll('#chat-log b').length")
        .await;
    assert_eq!(markup, 0, "chat text is never turned into markup");

    b.type_into("#chat-input", "hi there").await;
    wait_typing(a, true, PATIENCE).await;
    b.click_button("Send").await;
    wait_chat_line(a, "stranger", "hi there").await;
    wait_chat_line(b, "you", "hi there").await;
    wait_typing(a, false, PATIENCE).await;
}

/// The actor turns its camera off: the observer's video says so; on again: the notice goes
/// and the picture is back. The same with the microphone and "Stranger is muted".
pub async fn media_notices(actor: &Page, observer: &Page) {
    let notice = "document.getElementById('video-notice')";
    let off = "Stranger turned their camera off";
    actor.click_button("Camera off").await;
    observer
        .wait_for(
            &format!(
                "!{notice}.hidden && {notice}.textContent.includes({})",
                json!(off)
            ),
            &format!("{off:?} after {} turned the camera off", actor.name),
            PATIENCE,
        )
        .await;
    actor.click_button("Camera off").await;
    observer
        .wait_for(
            &format!(
                "{notice}.hidden && __strangers.state === 'connected' && \
                 document.getElementById('remote-video').videoWidth > 0"
            ),
            &format!("the picture back after {} turned the camera on", actor.name),
            PATIENCE,
        )
        .await;

    let muted = "document.getElementById('remote-muted')";
    actor.click_button("Mute mic").await;
    observer
        .wait_for(
            &format!("!{muted}.hidden && {muted}.textContent.trim()"),
            &format!("\"Stranger is muted\" after {} muted", actor.name),
            PATIENCE,
        )
        .await;
    actor.click_button("Mute mic").await;
    observer
        .wait_for(
            &format!("{muted}.hidden"),
            &format!("the muted notice gone after {} unmuted", actor.name),
            PATIENCE,
        )
        .await;
}

/// Well under the heartbeat's 20 s, well over what a loaded machine takes.
const TOLD_AT_ONCE: Duration = Duration::from_secs(5);

/// `closer` closes its tab; `observer` must be told the stranger left at once: from the
/// closed connection, not from the heartbeat, which would take 20 s or more (a dead peer is
/// found after two ping intervals). Returns how long it took, which the caller prints; the
/// bound is loose so a busy machine does not fail it.
pub async fn close_tab_is_seen(closer: &mut Browser, observer: &Page) -> Duration {
    let t0 = Instant::now();
    let seen_at = async {
        observer
            .wait_for(
                &format!(
                    "[...document.querySelectorAll('#chat-log li')].some((li) => li.textContent.includes({}))",
                    json!(LEFT)
                ),
                &format!("{LEFT:?} within {TOLD_AT_ONCE:?} of the stranger closing the tab"),
                TOLD_AT_ONCE,
            )
            .await;
        t0.elapsed()
    };
    let ((), elapsed) = tokio::join!(closer.close_window(), seen_at);
    assert!(
        elapsed < TOLD_AT_ONCE,
        "{} was told after {elapsed:?}",
        observer.name
    );
    elapsed
}

/// Three people are online, on the chat page with Auto-next on. A and B start a call; C
/// waits. A presses Next: A is put with C at once and sees C's video; B sees "Stranger has
/// disconnected" and, since Auto-next is on, is looking again a second later. A keeps
/// pressing Next: each time A meets whoever was waiting, sees their video, and the one left
/// behind is told and queues again. That first Next is followed by ten more in a row; after
/// each of the eleven new calls A's page holds no more peer connections, tracks, listeners
/// or timers than after the first call.
pub async fn next_without_leaking(server: SocketAddr, a: &Page, b: &Page, c: &Page) {
    for page in [a, b, c] {
        page.open("/chat").await;
        let auto_next = page
            .eval("document.getElementById('auto-next').checked")
            .await;
        assert_eq!(auto_next, true, "{}: Auto-next is on by default", page.name);
    }

    // The first call: A and B.
    a.click_button("Start").await;
    common::wait_waiting(server, 1, "A pressed Start").await;
    b.click_button("Start").await;
    let (room_a, room_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    assert_eq!(room_a, room_b);
    let baseline = settled_call(a).await;

    // C comes online and waits.
    c.click_button("Start").await;
    common::wait_waiting(server, 1, "C pressed Start while A and B talk").await;

    // A presses Next once, then ten more times in a row. Before each press exactly one page
    // is waiting (the server's queue says so); A meets that page, and the one A leaves
    // queues again.
    let (mut partner, mut waiting) = (b, c);
    let mut room = room_a;
    for step in 1..=11 {
        room = next_meets_the_waiting(server, step, a, partner, waiting, &room).await;
        assert_back_at_baseline(step, a, &baseline).await;
        std::mem::swap(&mut partner, &mut waiting);
    }

    // The other two pages have been skipped and rematched again and again.
    for page in [b, c] {
        let d = page.debug_counts().await;
        assert!(
            d["peerConnections"].as_u64() <= Some(1)
                && d["warmPeerConnections"].as_u64() <= Some(1)
                && d["remoteTracks"].as_u64() <= Some(2)
                && d["localTracks"] == 2,
            "{}: debug() after many calls: {d}",
            page.name
        );
    }
}

/// What A's page holds in a settled call (both remote tracks, the match flash over): the
/// baseline nothing may grow beyond.
async fn settled_call(a: &Page) -> Value {
    let baseline = a
        .wait_for(
            "(() => { const d = __strangers.debug(); \
               return d.remoteTracks === 2 && !document.getElementById('video-frame').classList.contains('flash') && d; })()",
            "A's first call settling (both remote tracks, the match flash over)",
            PATIENCE,
        )
        .await;
    assert_eq!(
        baseline["peerConnections"], 1,
        "A after the first call: {baseline}"
    );
    assert_eq!(
        baseline["localTracks"], 2,
        "A after the first call: {baseline}"
    );
    baseline
}

/// A presses Next (its `step`th): A meets `waiting` in a new room, `partner` is told and
/// looks again by itself (Auto-next) until the server has it queued. Returns the new room.
async fn next_meets_the_waiting(
    server: SocketAddr,
    step: u32,
    a: &Page,
    partner: &Page,
    waiting: &Page,
    room: &str,
) -> String {
    a.click_button("Next").await;
    let (new_a, new_w, ()) = tokio::join!(
        a.wait_video(PATIENCE),
        waiting.wait_video(PATIENCE),
        partner.wait_log_line(LEFT, PATIENCE),
    );
    assert_eq!(
        new_a, new_w,
        "Next #{step}: A meets {}, who was waiting",
        waiting.name
    );
    assert_ne!(new_a, room, "Next #{step}: a new room");
    partner
        .wait_for(
            "__strangers.state === 'waiting' && !__strangers.pc",
            &format!("Next #{step}: the skipped page looking again (Auto-next)"),
            PATIENCE,
        )
        .await;
    common::wait_waiting(
        server,
        1,
        &format!("Next #{step}: {} queued again", partner.name),
    )
    .await;
    new_a
}

/// Nothing accumulates on A: once the call settles its counts are the first call's.
async fn assert_back_at_baseline(step: u32, a: &Page, baseline: &Value) {
    let condition = format!(
        "(() => {{ const d = __strangers.debug(); \
           return d.peerConnections <= 1 && d.warmPeerConnections <= 1 \
             && d.remoteTracks <= 2 && d.localTracks === 2 \
             && d.listeners === {} && d.timers === {} && d; }})()",
        baseline["listeners"], baseline["timers"]
    );
    a.wait_for(
        &condition,
        &format!(
            "Next #{step}: A's debug() counts back at the first call's {baseline} \
             (≤1 peer connection and ≤1 made ahead, ≤2 remote tracks, 2 local tracks)"
        ),
        Duration::from_secs(5),
    )
    .await;
}

/// On the phone page: the size of every control that must fit on the screen, the window's
/// width and how wide the document is (`scrollWidth`).
const PHONE_LAYOUT: &str = r#"(() => {
  const box = (el) => {
    const r = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return { left: r.left, right: r.right, width: r.width, height: r.height,
             shown: style.display !== 'none' && style.visibility !== 'hidden' && Number(style.opacity) > 0 };
  };
  const buttons = {};
  for (const b of document.querySelectorAll('button')) buttons[b.textContent.trim()] = box(b);
  const items = {
    'remote video': box(document.getElementById('remote-video')),
    'local video': box(document.getElementById('local-video')),
    'Start': buttons['Start'], 'Next': buttons['Next'], 'Stop': buttons['Stop'],
    'Mute mic': buttons['Mute mic'], 'Camera off': buttons['Camera off'],
    'chat input': box(document.getElementById('chat-input')),
  };
  // Any other control shown next to them (added later) must fit too.
  for (const el of document.querySelectorAll('.controls button, .controls label, #chat-form button')) {
    const name = 'control ' + JSON.stringify(el.textContent.trim());
    const b = box(el);
    if (!items[el.textContent.trim()] && b.shown && b.width > 0) items[name] = b;
  }
  return {
    innerWidth, innerHeight,
    scrollWidth: document.documentElement.scrollWidth,
    items,
  };
})()"#;

/// On a 390×844 phone screen, in a call with `desk`: both videos, Start, Next, Stop, Mute
/// mic, Camera off and the message box fit across the screen, and nothing scrolls sideways.
/// The screenshot is kept as `target/e2e/<screenshot>`.
pub async fn phone_layout(server: SocketAddr, phone: &Page, desk: &Page, screenshot: &str) {
    phone.emulate_phone(390, 844).await;

    phone.open("/chat?start=1").await;
    common::wait_waiting(server, 1, "Phone started").await;
    desk.open("/chat?start=1").await;
    let (room_p, room_d) = tokio::join!(phone.wait_video(PATIENCE), desk.wait_video(PATIENCE));
    assert_eq!(room_p, room_d);
    // A still picture for the screenshot: our own preview playing, the match flash over.
    phone
        .wait_for(
            "document.getElementById('local-video').videoWidth > 0 && \
               !document.getElementById('video-frame').classList.contains('flash')",
            "the phone's own camera preview playing",
            PATIENCE,
        )
        .await;

    let layout = phone.eval(PHONE_LAYOUT).await;
    eprintln!("phone layout: {layout}");
    let width = layout["innerWidth"].as_f64().unwrap();
    assert_eq!(width, 390.0, "the emulated phone is 390 CSS pixels wide");
    assert!(
        layout["scrollWidth"].as_f64().unwrap() <= width,
        "the page scrolls sideways on a phone: {layout}"
    );
    let items = layout["items"].as_object().unwrap();
    let mut problems = Vec::new();
    for (name, b) in items {
        if b.is_null() {
            problems.push(format!("{name}: missing"));
            continue;
        }
        let (left, right) = (b["left"].as_f64().unwrap(), b["right"].as_f64().unwrap());
        if b["shown"] != true
            || b["width"].as_f64() <= Some(0.0)
            || b["height"].as_f64() <= Some(0.0)
        {
            problems.push(format!("{name}: not shown {b}"));
        } else if left < 0.0 || right > width + 0.5 {
            problems.push(format!("{name}: sticks out of the screen {b}"));
        }
    }
    let path = harness::artifact_dir().join(screenshot);
    phone.screenshot_to(&path).await;
    eprintln!("screenshot: {}", path.display());
    assert!(
        problems.is_empty(),
        "on a 390 px wide phone:\n  {}",
        problems.join("\n  ")
    );
}

/// The console check itself: an error, an uncaught exception and an unhandled rejection on
/// a page are all caught (so "no errors" in the other tests means something), while the
/// app's informational messages are not.
pub async fn console_check_catches(page: &Page) {
    page.open("/chat").await;
    page.eval(
        "(() => { console.info('strangers: just so you know'); \
           console.error('e2e: a console error'); \
           setTimeout(() => { throw new Error('e2e: an uncaught exception'); }); \
           Promise.reject(new Error('e2e: an unhandled rejection')); })()",
    )
    .await;
    page.wait_for(
        "new Promise((resolve) => setTimeout(() => resolve(true), 50))",
        "the thrown exception to be reported",
        PATIENCE,
    )
    .await;
    let errors = page.console_errors().await;
    for needle in [
        "a console error",
        "an uncaught exception",
        "an unhandled rejection",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "the console check misses {needle:?}: {errors:#?}"
        );
    }
    assert_eq!(
        errors.len(),
        3,
        "informational messages are not errors: {errors:#?}"
    );
}

/// `page` was opened without a click on it (`/chat?start=1`), so the browser may refuse to
/// play the stranger's sound by itself. If it did (Firefox does; so do Safari and Chromium
/// on a first visit), the stranger's picture still plays, muted, and says "Sound is off: tap
/// the video to turn it on"; one tap on the video turns the sound on and the picture keeps
/// playing. Returns whether autoplay with sound was refused.
pub async fn sound_is_one_tap_away(page: &Page) -> bool {
    let state = "(() => { const v = document.getElementById('remote-video'); \
                  return { playing: !v.paused && v.readyState >= 2, muted: v.muted, \
                    blocked: document.getElementById('video-frame').classList.contains('sound-blocked'), \
                    t: v.currentTime }; })()";
    let before = page
        .wait_for(
            &format!("(() => {{ const s = {state}; return s.playing && s; }})()"),
            "the stranger's video playing",
            PATIENCE,
        )
        .await;
    let refused = before["blocked"] == true;
    assert_eq!(
        before["muted"], before["blocked"],
        "{}: the video is muted exactly when the page says sound is off: {before}",
        page.name
    );
    if !refused {
        return false;
    }
    page.click_css("#remote-video").await;
    // Playing on with sound for half a second: a refused play() would have muted it again
    // at once (and put the notice back).
    let t0 = before["t"].as_f64().unwrap_or(0.0);
    let after = page
        .wait_for(
            &format!(
                "(() => {{ const s = {state}; \
                   return s.playing && !s.muted && !s.blocked && s.t > {t0} + 0.5 && s; }})()"
            ),
            "the stranger's video playing with sound after a tap on it",
            PATIENCE,
        )
        .await;
    harness::trace(&format!("{}: sound on after a tap: {after}", page.name));
    true
}

/// Someone who refuses camera and microphone (`nocam`, launched with `Media::Denied`) can
/// still press Start, is told plainly why there is no video of them, gets matched with a
/// normal user and can text both ways; the stranger is told that their camera is off.
pub async fn no_camera_text_chat(server: SocketAddr, nocam: &Page, normal: &Page) {
    nocam.open("/chat?start=1").await;
    let explained = nocam
        .wait_for(
            "(() => { const t = document.getElementById('video-notice').textContent + ' ' + \
                 document.getElementById('status').textContent; \
               return __strangers.state === 'waiting' && /camera|microphone/i.test(t) \
                 && /permission denied/i.test(t) && t; })()",
            "a plain notice that the camera/microphone permission was denied",
            PATIENCE,
        )
        .await;
    eprintln!("NoCam page says: {explained}");
    let buttons = nocam
        .eval(
            "({ mute: document.getElementById('mute').disabled, \
                camera: document.getElementById('camera').disabled, \
                local: __strangers.debug().localTracks })",
        )
        .await;
    assert_eq!(
        buttons,
        json!({ "mute": true, "camera": true, "local": 0 }),
        "nothing to mute without media"
    );
    common::wait_waiting(server, 1, "NoCam is looking").await;

    normal.open("/chat?start=1").await;
    let (room_n, room_c) = tokio::join!(wait_room(normal), wait_room(nocam));
    assert_eq!(room_n, room_c);

    // No video checks here: without camera/microphone permission a browser offers only its
    // default-route address as an ICE candidate (Chromium hides it behind an mDNS name). On
    // a normal network the call still connects, but in CI's loopback-only namespace there is
    // no default route, so that page gathers no candidate at all and its video never
    // connects. What this promises, matching and text chat, does not depend on it.

    // The stranger is told why there is no picture of them (over signaling, so this holds
    // whether or not the video connection comes up).
    normal
        .wait_for(
            "/camera.*off/i.test(document.getElementById('video-notice').textContent)",
            "the normal page saying the stranger's camera is off",
            PATIENCE,
        )
        .await;

    // And the page without media keeps saying, for the whole call, that the stranger
    // cannot see or hear them.
    nocam
        .wait_for(
            "!document.getElementById('self-unseen').hidden",
            "the no-camera page saying the stranger can't see or hear them",
            PATIENCE,
        )
        .await;

    // Text both ways.
    nocam
        .type_into("#chat-input", &format!("no camera here{}", Key::Enter))
        .await;
    wait_chat_line(normal, "stranger", "no camera here").await;
    normal.type_into("#chat-input", "no problem").await;
    normal.click_button("Send").await;
    wait_chat_line(nocam, "stranger", "no problem").await;
}
