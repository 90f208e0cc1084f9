//! Firefox in real calls: headless Firefox ESR pages (fake camera and microphone) call
//! headless Chromium pages and each other through a real server on 127.0.0.1, in both roles
//! of the call, and we check what a user would see on both sides: the stranger's moving
//! picture, chat lines and the typing indicator, the camera-off and muted notices, "Stranger
//! has disconnected" after Stop or a closed tab, Next after Next without anything piling up,
//! the call going on through a server restart, a phone-sized layout, and no console errors.
//!
//! Every scenario runs inside a private network namespace of its own
//! ([`harness::netns`]): Firefox gathers ICE candidates only on the interface of its default
//! route, which a loopback-only namespace (CI's) does not have. That needs root; without it,
//! or without Firefox and geckodriver, the tests are skipped loudly, except in CI
//! (`CI=true`) where that is a failure.

mod browser_harness;
mod common;
mod scenarios;

use browser_harness as harness;
use browser_harness::{Browser, Engine, Media, PATIENCE, Tools, assert_no_console_errors};
use common::TestServer;
use serde_json::{Value, json};

use Engine::{Chromium, Firefox};

/// Runs `scenario` with the tools, inside a private network namespace, one scenario at a
/// time; or skips (see the module docs).
fn run<F: std::future::Future<Output = ()>>(scenario: impl FnOnce(Tools) -> F) {
    let Some(tools) = harness::firefox_tools_or_skip() else {
        return;
    };
    harness::netns::block_on_inside(|| async move {
        let _turn = harness::exclusive().await;
        scenario(tools).await;
    });
}

/// A and B, in the engines given, call each other until each has been the offerer and the
/// answerer (room ids and roles come from the server's seeded generator, so the calls
/// needed are always the same). In every call both see the other's moving picture; in the
/// first they text and see each other typing, in the second each turns camera and
/// microphone off and on and the other is told; then Stop and a closed tab are seen as
/// "Stranger has disconnected" on the other side.
async fn call_in_both_roles(tools: Tools, engines: [Engine; 2]) {
    let server = TestServer::start(&[]).await;
    let base = format!("http://{}", server.addr);
    let mut pages = Browser::launch_each(
        &tools,
        &base,
        &[
            (engines[0], "A", Media::Fake),
            (engines[1], "B", Media::Fake),
        ],
    )
    .await;
    let mut b = pages.pop().unwrap();
    let a = pages.pop().unwrap();
    let (a, b) = (&a, &mut b);

    a.open("/chat?start=1").await;
    common::wait_waiting(server.addr, 1, "A started").await;
    b.open("/chat?start=1").await;
    let mut roles = vec![scenarios::both_see_video(a, b, None).await];
    scenarios::chat_both_ways(a, b).await;

    // Next, until both have had both roles; the second call is where the media notices are
    // checked. A and B take turns pressing it: the one who presses waits, makes its early
    // offer, and offers when the other comes back (Auto-next).
    while roles.len() < 2 || !has_both_roles(&roles) {
        assert!(
            roles.len() < 6,
            "A and B never swapped roles in {} calls: {roles:?}",
            roles.len()
        );
        let room = a.eval("__strangers.room").await;
        let (presser, other): (&Browser, &Browser) = if roles.len() % 2 == 1 {
            (a, &*b)
        } else {
            (&*b, a)
        };
        presser.click_button("Next").await;
        other.wait_log_line(scenarios::LEFT, PATIENCE).await;
        roles.push(scenarios::both_see_video(a, b, room.as_str()).await);
        if roles.len() == 2 {
            scenarios::media_notices(a, b).await;
            scenarios::media_notices(b, a).await;
        }
    }
    eprintln!("{engines:?}: A's and B's roles in each call: {roles:?}");
    stop_and_close(&server, a, b).await;
}

/// Whether the calls gave B both roles (A then had both too: the roles are opposite).
fn has_both_roles(roles: &[(Value, Value)]) -> bool {
    ["offerer", "answerer"]
        .iter()
        .all(|role| roles.iter().any(|(_, b)| b == role))
}

/// A presses Stop: B is told. A starts again and meets B; B presses Stop: A is told. B
/// starts again, meets A, and closes the tab: A is told within a second.
async fn stop_and_close(server: &TestServer, a: &Browser, b: &mut Browser) {
    for (stopper, other) in [(a, &*b), (&*b, a)] {
        stopper.click_button("Stop").await;
        other.wait_log_line(scenarios::LEFT, PATIENCE).await;
        let after = stopper
            .eval("({ state: __strangers.state, pcs: __strangers.debug().peerConnections })")
            .await;
        assert_eq!(
            after,
            json!({ "state": "idle", "pcs": 0 }),
            "{} after Stop",
            stopper.name
        );
        // The other looks again by itself (Auto-next) and meets the stopper's next Start.
        common::wait_waiting(server.addr, 1, &format!("{} queued again", other.name)).await;
        stopper.click_button("Start").await;
        scenarios::both_see_video(a, b, None).await;
    }

    let b_errors = b.console_errors().await;
    let elapsed = scenarios::close_tab_is_seen(b, a).await;
    eprintln!(
        "{:?} and {:?}: A saw \"{}\" {elapsed:?} after B's tab was closed",
        a.engine,
        b.engine,
        scenarios::LEFT
    );
    assert!(
        b_errors.is_empty(),
        "B logged errors before closing: {b_errors:#?}"
    );
    assert_no_console_errors(&[a]).await;
}

#[test]
fn chromium_and_firefox_call_each_other_in_both_roles() {
    run(|tools| call_in_both_roles(tools, [Chromium, Firefox]));
}

#[test]
fn firefox_and_firefox_call_each_other_in_both_roles() {
    run(|tools| call_in_both_roles(tools, [Firefox, Firefox]));
}

/// The eleven-Nexts check of `tests/browser.rs` with Firefox pressing Next and meeting a
/// Chromium and a Firefox page in turn: every call shows video both ways, the one left is
/// told and queues again, and the Firefox page's peer connections, tracks, listeners and
/// timers never grow beyond the first call's.
#[test]
fn next_in_firefox_moves_on_without_leaking() {
    run(|tools| async move {
        let server = TestServer::start(&[]).await;
        let base = format!("http://{}", server.addr);
        let pages = Browser::launch_each(
            &tools,
            &base,
            &[
                (Firefox, "A", Media::Fake),
                (Chromium, "B", Media::Fake),
                (Firefox, "C", Media::Fake),
            ],
        )
        .await;
        let [a, b, c] = &pages[..] else {
            unreachable!()
        };
        scenarios::next_without_leaking(server.addr, a, b, c).await;
        assert_no_console_errors(&[a, b, c]).await;
    });
}

/// The server restarts in the middle of a Chromium–Firefox call (see
/// `scenarios::restart`): the call goes on, both pages come back to the new server by
/// themselves, and a Next afterwards meets on the new server.
#[test]
fn a_server_restart_mid_call_keeps_a_call_with_firefox() {
    run(|tools| async move {
        scenarios::restart::restart_keeps_the_call(&tools, [Chromium, Firefox]).await;
    });
}

/// The same restart in the middle of a call between two Firefoxes: both pages come back by
/// themselves and get their room back while the call goes on.
#[test]
fn a_server_restart_mid_call_keeps_a_call_between_two_firefoxes() {
    run(|tools| async move {
        scenarios::restart::restart_keeps_the_call(&tools, [Firefox, Firefox]).await;
    });
}

/// On a 390×844 phone screen in Firefox, in a call with a Chromium desktop: every control
/// fits across the screen and nothing scrolls sideways (the check of `tests/browser.rs`).
/// The screenshot is kept as `target/e2e/phone-chat-firefox.png`. Then the sound: Firefox
/// refuses to start it on this page (nobody clicked on it), the page says so on the video,
/// and a tap on the video turns it on.
#[test]
fn phone_screen_in_firefox_shows_everything_without_sideways_scrolling() {
    run(|tools| async move {
        let server = TestServer::start(&[]).await;
        let base = format!("http://{}", server.addr);
        let pages = Browser::launch_each(
            &tools,
            &base,
            &[
                (Firefox, "Phone", Media::Fake),
                (Chromium, "Desk", Media::Fake),
            ],
        )
        .await;
        let [phone, desk] = &pages[..] else {
            unreachable!()
        };
        scenarios::phone_layout(server.addr, phone, desk, "phone-chat-firefox.png").await;
        // Firefox refuses to start the stranger's sound on a page nobody clicked on.
        assert!(
            scenarios::sound_is_one_tap_away(phone).await,
            "Firefox played the stranger's sound without a tap: the fallback went untested"
        );
        assert_no_console_errors(&[phone, desk]).await;
    });
}

/// The console check on Firefox (its log comes as WebDriver BiDi events): an error, an
/// uncaught exception and an unhandled rejection are caught, informational messages are
/// not; so "no console errors" in the other Firefox tests means something.
#[test]
fn console_check_catches_errors_and_exceptions_in_firefox() {
    run(|tools| async move {
        let server = TestServer::start(&[]).await;
        let base = format!("http://{}", server.addr);
        let page = Browser::launch_as(&tools, Firefox, "P", &base, Media::Fake).await;
        scenarios::console_check_catches(&page).await;
    });
}

/// Someone in Firefox who refuses camera and microphone still gets matched with a Chromium
/// user and texts both ways; each side is told what the other cannot see (the check of
/// `tests/browser.rs`, with Firefox's permission refusal).
#[test]
fn no_camera_in_firefox_still_gets_matched_for_text_chat() {
    run(|tools| async move {
        let server = TestServer::start(&[]).await;
        let base = format!("http://{}", server.addr);
        let pages = Browser::launch_each(
            &tools,
            &base,
            &[
                (Firefox, "NoCam", Media::Denied),
                (Chromium, "Normal", Media::Fake),
            ],
        )
        .await;
        let [nocam, normal] = &pages[..] else {
            unreachable!()
        };
        scenarios::no_camera_text_chat(server.addr, nocam, normal).await;
        assert_no_console_errors(&[nocam, normal]).await;
    });
}
