//! Steps of browser scenarios that hold whatever engines the pages run in: each takes pages
//! already launched (and the server's address where it needs the queue) and asserts what a
//! user would see. Used by `tests/browser_firefox.rs`, and by the Chromium tests where they
//! share a step.
#![allow(dead_code)] // each test binary uses a different part

use std::time::{Duration, Instant};

use crate::browser_harness::{self as harness, Browser, PATIENCE, Page};
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

/// `closer` closes its tab; `observer` must be told the stranger left within a second of
/// the close command. Returns how long it took.
pub async fn close_tab_is_seen(closer: &mut Browser, observer: &Page) -> Duration {
    let t0 = Instant::now();
    let seen_at = async {
        observer
            .wait_for(
                &format!(
                    "[...document.querySelectorAll('#chat-log li')].some((li) => li.textContent.includes({}))",
                    json!(LEFT)
                ),
                &format!("{LEFT:?} within 1 s of the stranger closing the tab"),
                Duration::from_secs(1),
            )
            .await;
        t0.elapsed()
    };
    let ((), elapsed) = tokio::join!(closer.close_window(), seen_at);
    assert!(
        elapsed < Duration::from_secs(1),
        "{} was told after {elapsed:?}",
        observer.name
    );
    elapsed
}
