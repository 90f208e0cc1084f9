//! End to end in real browsers: headless Chromium pages with fake cameras talk to a real
//! server on 127.0.0.1 and to each other over WebRTC on loopback, and we check what a user
//! would see: the stranger's moving picture, "Stranger has disconnected", chat lines, the
//! typing indicator, the camera notice, a phone-sized layout.
//!
//! One Chromium per page (background tabs are throttled). Scenarios run one at a time
//! (`harness::exclusive`). Every test ends by checking that no page logged a console error
//! or an uncaught exception. Without Chromium the tests are skipped loudly, except in CI
//! (`CI=true`) where that is a failure.

mod browser_harness;
mod common;
mod scenarios;

use std::time::{Duration, Instant};

use browser_harness as harness;
use browser_harness::{Browser, Media, PATIENCE, assert_no_console_errors};
use common::TestServer;
use fantoccini::key::Key;
use scenarios::{wait_chat_line, wait_room, wait_typing};
use serde_json::Value;

const LEFT: &str = "Stranger has disconnected";

/// A running server and the origin pages load from.
async fn server() -> (TestServer, String) {
    let server = TestServer::start(&[]).await;
    let base = format!("http://{}", server.addr);
    (server, base)
}

/// Two strangers open the landing page, press Start, and see each other: on both pages the
/// peer connection is connected, the stranger's video decodes frames, and the big video
/// element has a picture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_strangers_press_start_and_see_each_other() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let (_server, base) = server().await;
    let pages = Browser::launch_all(&tools, &base, &[("A", Media::Fake), ("B", Media::Fake)]).await;
    let [a, b] = &pages[..] else { unreachable!() };

    for page in [a, b] {
        page.open("/").await;
        page.click_button("Start").await;
    }
    let (room_a, room_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    assert_eq!(room_a, room_b, "A and B are in the same room");

    // The landing form took both to the chat page, which started by itself.
    for page in [a, b] {
        let url = page.eval("location.pathname + location.search").await;
        assert!(
            url.as_str().unwrap_or("").starts_with("/chat?"),
            "{}: the landing page's Start leads to /chat, got {url}",
            page.name
        );
        let seen = page
            .eval(
                "({ state: __strangers.state, pc: __strangers.pc.connectionState, \
                  status: document.getElementById('status').textContent })",
            )
            .await;
        assert_eq!(seen["state"], "connected", "{}: {seen}", page.name);
        assert_eq!(seen["pc"], "connected", "{}: {seen}", page.name);
    }
    let roles = (
        a.eval("__strangers.role").await,
        b.eval("__strangers.role").await,
    );
    assert_ne!(roles.0, roles.1, "one offerer and one answerer: {roles:?}");

    assert_no_console_errors(&[a, b]).await;
}

/// Three people are online. A and B are talking; C is waiting. A presses Next: A is put
/// with C at once and sees C's video; B sees "Stranger has disconnected" and, since
/// Auto-next is on, is looking again a second later. A keeps pressing Next: each time A
/// meets whoever was waiting, sees their video, and the one left behind is told and queues
/// again. That first Next is followed by ten more in a row; after each of the eleven new
/// calls A's page holds no more peer connections, tracks, listeners or timers than after
/// the first call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_moves_on_to_someone_new_without_leaking() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let (server, base) = server().await;
    let pages = Browser::launch_all(
        &tools,
        &base,
        &[("A", Media::Fake), ("B", Media::Fake), ("C", Media::Fake)],
    )
    .await;
    let [a, b, c] = &pages[..] else {
        unreachable!()
    };
    scenarios::next_without_leaking(server.addr, a, b, c).await;
    assert_no_console_errors(&[a, b, c]).await;
}

/// A and B are talking, C waits. A presses Next five times as fast as it can (within a
/// second): A ends in one call with whoever it met last, seeing their video, holding one
/// peer connection for it and at most one made ahead for the next; the third page is
/// looking again; no page logs an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_five_times_in_a_row_ends_in_one_clean_call() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let (server, base) = server().await;
    let pages = Browser::launch_all(
        &tools,
        &base,
        &[("A", Media::Fake), ("B", Media::Fake), ("C", Media::Fake)],
    )
    .await;
    let [a, b, c] = &pages[..] else {
        unreachable!()
    };
    a.open("/chat?start=1").await;
    common::wait_waiting(server.addr, 1, "A started").await;
    b.open("/chat?start=1").await;
    let (room_a, room_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    assert_eq!(room_a, room_b);
    c.open("/chat?start=1").await;
    common::wait_waiting(server.addr, 1, "C waits while A and B talk").await;

    // Pressed from inside the page, 50 ms apart (the server's answers to one press can come
    // in between): a WebDriver click takes a few round trips each, far more than a second in
    // all on a busy machine.
    let presses = a
        .eval(
            "(async () => { const next = document.getElementById('next'); \
               const t0 = performance.now(); let pressed = 0; \
               for (let i = 0; i < 5; i++) { \
                 if (i) await new Promise((r) => setTimeout(r, 50)); \
                 if (next.disabled) break; \
                 next.click(); pressed += 1; } \
               return { pressed, ms: performance.now() - t0 }; })()",
        )
        .await;
    eprintln!("A pressed Next: {presses}");
    assert_eq!(presses["pressed"], 5, "Next stayed enabled: {presses}");
    let ms = presses["ms"].as_f64().unwrap_or(f64::MAX);
    assert!(ms < 1000.0, "five presses within a second: {presses}");
    let room = a.wait_video(PATIENCE).await;
    let (met, other) = if b.eval("__strangers.room").await == room.as_str() {
        (b, c)
    } else {
        (c, b)
    };
    assert_eq!(
        met.wait_video(PATIENCE).await,
        room,
        "A and {} in one room",
        met.name
    );
    other
        .wait_for(
            "__strangers.state === 'waiting' && !__strangers.pc",
            "the page A did not end with looking again (Auto-next)",
            PATIENCE,
        )
        .await;
    common::wait_waiting(server.addr, 1, "the third page queued").await;
    a.wait_for(
        "(() => { const d = __strangers.debug(); \
           return d.peerConnections === 1 && d.warmPeerConnections <= 1 \
             && d.remoteTracks === 2 && d.localTracks === 2 && d; })()",
        "A holding one call's peer connection (and at most one made ahead), nothing more",
        PATIENCE,
    )
    .await;
    assert_eq!(a.eval("__strangers.state").await, "connected");
    assert_no_console_errors(&[a, b, c]).await;
}

/// A page with the flow from before early offers (`?ahead=0`, as an old client) meets A,
/// who waited and offered ahead: B gets A's offer as an ordinary `offer` after `matched`,
/// answers it, and both see each other's video; B made nothing ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_without_early_offers_answers_one_made_ahead() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let (_server, base) = server().await;
    let pages = Browser::launch_all(&tools, &base, &[("A", Media::Fake), ("B", Media::Fake)]).await;
    let [a, b] = &pages[..] else { unreachable!() };
    b.install_recorder().await;
    a.open("/chat?start=1").await;
    a.wait_for(
        "__strangers.debug().earlyOffers >= 1 && __strangers.state === 'waiting'",
        "A's early offer sent while waiting",
        PATIENCE,
    )
    .await;
    b.open("/chat?start=1&ahead=0").await;
    let (room_a, room_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    assert_eq!(room_a, room_b);
    assert_eq!(
        (
            a.eval("__strangers.role").await,
            b.eval("__strangers.role").await
        ),
        ("offerer".into(), "answerer".into())
    );
    let rec = b.recorded().await;
    let msgs = rec["msgs"].as_array().cloned().unwrap_or_default();
    let got = |kind: &str| {
        msgs.iter()
            .position(|m| m["type"] == kind && m["room"] == room_b.as_str())
    };
    let (matched, offer) = (got("matched"), got("offer"));
    assert!(
        matches!((matched, offer), (Some(m), Some(o)) if o > m),
        "B got A's offer as an ordinary offer after matched: {msgs:?}"
    );
    let sent = rec["sent"].as_array().cloned().unwrap_or_default();
    assert!(!sent.iter().any(|m| m["type"] == "early_offer"), "{sent:?}");
    assert_eq!(b.eval("__strangers.debug().warmPeerConnections").await, 0);
    assert_no_console_errors(&[a, b]).await;
}

/// Installed on the answerer's page before it loads: every ICE candidate of the first
/// offer and answer is lost on the way, both ways (the `a=candidate` lines of the SDPs, and
/// every `candidate` message), until a second offer comes in its room: the restart's.
/// `window.__lost` counts what was dropped.
const LOSE_FIRST_CANDIDATES: &str = r#"(() => {
  const lost = (window.__lost = { candidates: 0, lines: 0, passing: false });
  const strip = (sdp) => sdp.split('\r\n').filter((line) => {
    const drop = line.startsWith('a=candidate:') || line === 'a=end-of-candidates';
    if (drop) lost.lines += 1;
    return !drop;
  }).join('\r\n');
  let offers = 0;
  const wrapped = new WeakMap();
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    send(data) {
      const m = JSON.parse(data);
      if (!lost.passing && m.type === 'candidate') { lost.candidates += 1; return; }
      if (!lost.passing && m.type === 'answer') data = JSON.stringify({ ...m, sdp: strip(m.sdp) });
      return super.send(data);
    }
    addEventListener(type, fn, options) {
      if (type !== 'message') return super.addEventListener(type, fn, options);
      const wrapper = (event) => {
        const m = JSON.parse(event.data);
        const offer = m.type === 'offer' ? m.sdp : m.type === 'matched' ? m.offer : null;
        if (typeof offer === 'string' && ++offers > 1) lost.passing = true;
        let data = event.data;
        if (!lost.passing) {
          if (m.type === 'candidate') { lost.candidates += 1; return; }
          if (m.type === 'offer') data = JSON.stringify({ ...m, sdp: strip(m.sdp) });
          if (typeof m.offer === 'string') data = JSON.stringify({ ...m, offer: strip(m.offer) });
        }
        fn.call(this, data === event.data ? event : new MessageEvent('message', { data }));
      };
      wrapped.set(fn, wrapper);
      return super.addEventListener(type, wrapper, options);
    }
    removeEventListener(type, fn, options) {
      return super.removeEventListener(type, wrapped.get(fn) || fn, options);
    }
  };
})();"#;

/// Every candidate of a call is lost on the way, both ways (as when an answer gathers none):
/// neither side has anything to check, and ICE would stay "new" for good. The offerer, with
/// the answer but no candidate of the stranger's, restarts ICE a few seconds later; the
/// restart's candidates get through, and both see each other's video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_candidates_are_all_lost_is_restarted() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let (_server, base) = server().await;
    let pages = Browser::launch_all(&tools, &base, &[("A", Media::Fake), ("B", Media::Fake)]).await;
    let [a, b] = &pages[..] else { unreachable!() };
    a.install_recorder().await;
    b.add_init_script(LOSE_FIRST_CANDIDATES).await;
    a.open("/chat?start=1").await;
    a.wait_for(
        "__strangers.debug().earlyOffers >= 1 && __strangers.state === 'waiting'",
        "A's early offer sent while waiting",
        PATIENCE,
    )
    .await;
    b.open("/chat?start=1").await;
    let (room_a, room_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    assert_eq!(room_a, room_b);
    assert_eq!(a.eval("__strangers.role").await, "offerer");
    let lost = b.eval("window.__lost").await;
    assert!(
        lost["lines"].as_u64() > Some(0) && lost["passing"] == true,
        "the first candidates were lost, the restart's came through: {lost}"
    );
    let rec = a.recorded().await;
    let offers_in_room = rec["sent"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["type"] == "offer")
        .count();
    assert_eq!(
        offers_in_room, 1,
        "A's early offer, then one restart offer: {}",
        rec["sent"]
    );
    assert_no_console_errors(&[a, b]).await;
}

/// Two waiters with no interest in common both made early offers when their fallback pairs
/// them: one offer is used, and its receiver, whose own offer it meets, rolls that back and
/// answers (perfect negotiation). Both see each other's video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_early_offers_meet_and_one_rolls_back() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let server = TestServer::start(&["--fallback-after", "3s"]).await;
    let base = format!("http://{}", server.addr);
    let pages = Browser::launch_all(&tools, &base, &[("A", Media::Fake), ("B", Media::Fake)]).await;
    let [a, b] = &pages[..] else { unreachable!() };
    a.open("/chat?interests=chess").await;
    b.open("/chat?interests=jazz").await;
    for page in [a, b] {
        page.wait_for(
            "__strangers.debug().earlyOffers >= 1 && __strangers.state === 'waiting'",
            "an early offer sent while waiting",
            PATIENCE,
        )
        .await;
    }
    let (room_a, room_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    assert_eq!(room_a, room_b);
    let collided = (
        a.eval("__strangers.debug().collided").await,
        b.eval("__strangers.debug().collided").await,
    );
    assert!(
        collided == (true.into(), false.into()) || collided == (false.into(), true.into()),
        "exactly one page rolled its own offer back: {collided:?}"
    );
    assert_no_console_errors(&[a, b]).await;
}

/// A and B are talking. A presses Stop: B sees "Stranger has disconnected" (and, with
/// Auto-next, looks for someone new), A is idle. A presses Start again and meets B. Then B
/// closes the tab: A sees "Stranger has disconnected" within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_closing_the_tab_tell_the_stranger() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let (server, base) = server().await;
    let mut pages =
        Browser::launch_all(&tools, &base, &[("A", Media::Fake), ("B", Media::Fake)]).await;
    let b = pages.pop().unwrap();
    let a = pages.pop().unwrap();

    a.open("/chat?start=1").await;
    common::wait_waiting(server.addr, 1, "A started").await;
    b.open("/chat?start=1").await;
    let (room_a, room_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    assert_eq!(room_a, room_b);

    // Stop.
    a.click_button("Stop").await;
    b.wait_log_line(LEFT, PATIENCE).await;
    let after = a
        .eval(
            "({ state: __strangers.state, pc: __strangers.pc, \
                pcs: __strangers.debug().peerConnections, \
                warm: __strangers.debug().warmPeerConnections, \
                status: document.getElementById('status').textContent })",
        )
        .await;
    assert_eq!(
        after["warm"], 0,
        "A after Stop keeps nothing made ahead for a call: {after}"
    );
    assert_eq!(after["state"], "idle", "A after Stop: {after}");
    assert_eq!(after["pc"], Value::Null, "A after Stop: {after}");
    assert_eq!(
        after["pcs"], 0,
        "A after Stop closed its peer connection: {after}"
    );
    b.wait_for(
        "__strangers.state === 'waiting'",
        "B looking for someone new (Auto-next) after A stopped",
        PATIENCE,
    )
    .await;
    common::wait_waiting(server.addr, 1, "B queued again").await;

    // Start again: A meets B, who was waiting.
    a.click_button("Start").await;
    let (room_a, room_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    assert_eq!(room_a, room_b);

    // B closes the tab. A must be told within a second of the close command.
    let b_errors = b.console_errors().await;
    let mut b = b;
    let elapsed = scenarios::close_tab_is_seen(&mut b, &a).await;
    eprintln!("A saw \"{LEFT}\" {elapsed:?} after B's tab was closed");
    drop(b);

    assert!(
        b_errors.is_empty(),
        "B logged errors before closing: {b_errors:#?}"
    );
    assert_no_console_errors(&[&a]).await;
}

/// A and B are matched. While A types, B sees "Stranger is typing…"; when A sends with Enter
/// the line appears in B's chat log (as text, never markup) and the indicator goes away.
/// B answers with the Send button. If A types and then stops without sending, B's indicator
/// goes away by itself a few seconds later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_chat_and_typing_indicator() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let (server, base) = server().await;
    let pages = Browser::launch_all(&tools, &base, &[("A", Media::Fake), ("B", Media::Fake)]).await;
    let [a, b] = &pages[..] else { unreachable!() };

    a.open("/chat?start=1").await;
    common::wait_waiting(server.addr, 1, "A started").await;
    b.open("/chat?start=1").await;
    let (room_a, room_b) = tokio::join!(wait_room(a), wait_room(b));
    assert_eq!(room_a, room_b);

    // A types: B sees the indicator before anything is sent.
    let message = "Hello <b>stranger</b> ✋";
    a.type_into("#chat-input", message).await;
    wait_typing(b, true, PATIENCE).await;
    let log = b
        .eval("document.getElementById('chat-log').textContent")
        .await;
    assert!(
        !log.as_str().unwrap_or("").contains("Hello"),
        "nothing is sent before Enter: {log}"
    );

    // Enter sends: the line shows on both sides and B's indicator goes away.
    a.type_into("#chat-input", &Key::Enter.to_string()).await;
    wait_chat_line(b, "stranger", message).await;
    wait_chat_line(a, "you", message).await;
    wait_typing(b, false, PATIENCE).await;
    let markup = b
        .eval("document.querySelectorAll('#chat-log b').length")
        .await;
    assert_eq!(markup, 0, "chat text is never turned into markup");
    let input = a.eval("document.getElementById('chat-input').value").await;
    assert_eq!(input, "", "the input is cleared after sending");

    // B answers with the Send button.
    b.type_into("#chat-input", "hi there").await;
    wait_typing(a, true, PATIENCE).await;
    b.click_button("Send").await;
    wait_chat_line(a, "stranger", "hi there").await;
    wait_typing(a, false, PATIENCE).await;

    // A types and stops without sending: the indicator clears by itself (3 s idle).
    a.type_into("#chat-input", "I was going to s").await;
    wait_typing(b, true, PATIENCE).await;
    let shown = Instant::now();
    wait_typing(b, false, Duration::from_secs(8)).await;
    eprintln!(
        "B's typing indicator cleared {:?} after it showed",
        shown.elapsed()
    );
    let log = b
        .eval("document.getElementById('chat-log').textContent")
        .await;
    assert!(
        !log.as_str().unwrap_or("").contains("going to"),
        "the unsent text stays unsent: {log}"
    );

    assert_no_console_errors(&[a, b]).await;
}

/// Someone who refuses camera and microphone can still press Start, is told plainly why
/// there is no video of them, gets matched with a normal user and can text both ways; the
/// stranger is told that their camera is off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_camera_still_gets_matched_for_text_chat() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let (server, base) = server().await;
    let pages = Browser::launch_all(
        &tools,
        &base,
        &[("NoCam", Media::Denied), ("Normal", Media::Fake)],
    )
    .await;
    let [nocam, normal] = &pages[..] else {
        unreachable!()
    };
    scenarios::no_camera_text_chat(server.addr, nocam, normal).await;
    assert_no_console_errors(&[nocam, normal]).await;
}

/// On a 390×844 phone screen, in a call: both videos, Start, Next, Stop, Mute mic, Camera
/// off and the message box fit across the screen, and nothing scrolls sideways. The
/// screenshot is kept as `target/e2e/phone-chat.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_screen_shows_everything_without_sideways_scrolling() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let (server, base) = server().await;
    let pages = Browser::launch_all(
        &tools,
        &base,
        &[("Phone", Media::Fake), ("Desk", Media::Fake)],
    )
    .await;
    let [phone, desk] = &pages[..] else {
        unreachable!()
    };
    scenarios::phone_layout(server.addr, phone, desk, "phone-chat.png").await;
    let refused = scenarios::sound_is_one_tap_away(phone).await;
    eprintln!("Chromium refused to start the stranger's sound by itself: {refused}");
    assert_no_console_errors(&[phone, desk]).await;
}

/// The console check itself: an error, an uncaught exception and an unhandled rejection on
/// a page are all caught (so "no errors" in the other tests means something), while the
/// app's informational messages are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_check_catches_errors_and_exceptions() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let (_server, base) = server().await;
    let page = Browser::launch(&tools, "P", &base, Media::Fake).await;
    scenarios::console_check_catches(&page).await;
}

/// The 18+ gate, in a browser that has never been here: the landing form cannot be sent
/// without ticking "I am 18 or older and agree to the rules"; `/chat?start=1` does not join
/// (Start is off and nothing is queued, though the page is connected and has its challenge
/// solved); ticking the box on the chat page turns Start on, and Start joins. After a
/// reload the box is still ticked and `/chat?start=1` joins by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_18_plus_gate_comes_before_the_first_start_and_is_remembered() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let (server, base) = server().await;
    let pages = Browser::launch_all(&tools, &base, &[("A", Media::Fake)]).await;
    let a = &pages[0];
    a.install_recorder().await;

    a.open_as_is("/").await;
    let valid = a
        .eval("document.querySelector('form.start-form').checkValidity()")
        .await;
    assert_eq!(valid, false, "the landing form needs the box ticked");

    a.open_as_is("/chat?start=1").await;
    a.wait_for(
        "__strangers.gate.lastSolve !== null && document.getElementById('conn').dataset.status === 'connected'",
        "connected, with the welcome's challenge solved",
        PATIENCE,
    )
    .await;
    // Connected and solved: a join would have gone out by now.
    let seen = a
        .eval(
            "({ state: __strangers.state, start: document.getElementById('start').disabled, \
              joins: __rec.sent.filter((m) => m.type === 'join' || m.type === 'next').length })",
        )
        .await;
    assert_eq!(seen["state"], "idle", "{seen}");
    assert_eq!(
        seen["start"], true,
        "Start is off before the box is ticked: {seen}"
    );
    assert_eq!(seen["joins"], 0, "no join before the box is ticked: {seen}");
    assert_eq!(server.health().await["waiting"], 0);

    a.click_css("#adult").await;
    a.click_button("Start").await;
    a.wait_for(
        "__rec.msgs.some((m) => m.type === 'waiting')",
        "the server's answer to the join",
        PATIENCE,
    )
    .await;
    common::wait_waiting(server.addr, 1, "A joined once the box was ticked").await;

    // A reload: the box is still ticked, and the page starts at once.
    a.open_as_is("/chat?start=1").await;
    a.wait_for(
        "document.getElementById('adult').checked && __rec.msgs.some((m) => m.type === 'waiting')",
        "a join after the reload, the box still ticked",
        PATIENCE,
    )
    .await;
    assert_no_console_errors(&[a]).await;
}
