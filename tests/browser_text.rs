//! Text mode in real browsers: two headless Chromium pages pick Text on the landing page and
//! chat, with no video element on either page and no call to the camera (every page counts
//! its calls to `getUserMedia`, from a script run before the page's own); and a video user
//! and a text user waiting at the same time are never paired; a user whose browser refuses
//! the camera is offered Text on the chat page and has it picked on the landing page; and a
//! text chat page asks for the 18+ confirmation and solves the proof of work as the video
//! page does.
//!
//! Without Chromium the tests are skipped loudly, except in CI (`CI=true`) where that is a
//! failure.

mod browser_harness;
mod common;
mod scenarios;

use browser_harness as harness;
use browser_harness::{Browser, Media, PATIENCE, assert_no_console_errors};
use common::TestServer;
use scenarios::wait_room;
use serde_json::json;

/// Run in every document before its scripts: counts the page's calls to `getUserMedia`.
const COUNT_CAMERA_ASKS: &str = r#"
window.__cameraAsks = 0;
if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
  const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (constraints) => {
    window.__cameraAsks += 1;
    return ask(constraints);
  };
}
"#;

/// A and B choose Text on the landing page and press Start: they meet in a text room, the
/// pages have no video element and no peer connection (none made ahead, no early offer
/// sent), nothing asked for the camera, the line over the chat says
/// they speak the same language (both browsers speak the browser's), and chat and the
/// typing indicator work both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_chat_in_text_mode_without_asking_for_the_camera() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let server = TestServer::start(&[]).await;
    let base = format!("http://{}", server.addr);
    let pages = Browser::launch_all(&tools, &base, &[("A", Media::Fake), ("B", Media::Fake)]).await;
    let [a, b] = &pages[..] else { unreachable!() };
    for page in [a, b] {
        page.add_init_script(COUNT_CAMERA_ASKS).await;
        page.open("/").await;
        page.click_css("input[name=mode][value=text]").await;
        page.click_button("Start").await;
    }
    let (room_a, room_b) = tokio::join!(wait_room(a), wait_room(b));
    assert_eq!(room_a, room_b, "A and B are in the same room");
    for page in [a, b] {
        let seen = page
            .eval(
                "({ mode: __strangers.mode, state: __strangers.state, pc: __strangers.pc, \
                  videos: document.querySelectorAll('video').length, \
                  asks: window.__cameraAsks, page: location.pathname + location.search, \
                  common: document.getElementById('common').textContent, \
                  made: (({ peerConnections, warmPeerConnections, earlyOffers }) => \
                    [peerConnections, warmPeerConnections, earlyOffers])(__strangers.debug()) })",
            )
            .await;
        assert_eq!(seen["mode"], "text", "{}: {seen}", page.name);
        assert_eq!(seen["state"], "connected", "{}: {seen}", page.name);
        assert_eq!(
            seen["pc"],
            json!(null),
            "{}: no peer connection: {seen}",
            page.name
        );
        assert_eq!(seen["videos"], 0, "{}: no video element: {seen}", page.name);
        assert_eq!(
            seen["made"],
            json!([0, 0, 0]),
            "{}: no peer connection, none made ahead, no early offer: {seen}",
            page.name
        );
        assert_eq!(
            seen["asks"], 0,
            "{}: the camera was never asked for: {seen}",
            page.name
        );
        assert!(
            seen["page"].as_str().unwrap().contains("mode=text"),
            "{}: {seen}",
            page.name
        );
        assert!(
            seen["common"]
                .as_str()
                .unwrap()
                .starts_with("You both speak "),
            "{}: {seen}",
            page.name
        );
    }
    scenarios::chat_both_ways(a, b).await;
    assert_no_console_errors(&[a, b]).await;
}

/// A video page and a text page both wait; a text user who comes next meets the text page,
/// a video user the video page: never the two of them. The video page asked for its camera
/// (so the count the text test relies on counts), the text page did not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_user_and_a_text_user_are_never_paired() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let server = TestServer::start(&[]).await;
    let base = format!("http://{}", server.addr);
    let pages = Browser::launch_all(&tools, &base, &[("V", Media::Fake), ("T", Media::Fake)]).await;
    let [video, text] = &pages[..] else {
        unreachable!()
    };
    video.add_init_script(COUNT_CAMERA_ASKS).await;
    text.add_init_script(COUNT_CAMERA_ASKS).await;
    video.open("/chat?start=1").await;
    common::wait_waiting(server.addr, 1, "V waits").await;
    text.open("/chat?mode=text&start=1").await;
    common::wait_waiting(server.addr, 2, "V and T wait, side by side").await;

    // The pages prefer their browser's language: so do these users, to be met at once.
    let lang = text
        .eval("navigator.language.split('-')[0].toLowerCase()")
        .await;
    let mut text_user = server.client().await;
    text_user
        .send(json!({"type": "join", "mode": "text", "lang": lang}))
        .await;
    text_user.recv_type("waiting").await;
    let matched = text_user.recv_type("matched").await;
    assert_eq!(matched["mode"], "text");
    assert_eq!(wait_room(text).await, matched["room"].as_str().unwrap());

    let mut video_user = server.client().await;
    video_user.send(json!({"type": "join", "lang": lang})).await;
    video_user.recv_type("waiting").await;
    let matched = video_user.recv_type("matched").await;
    assert_eq!(matched["mode"], "video");
    let room = video
        .wait_for("__strangers.room", "V matched", PATIENCE)
        .await;
    assert_eq!(room, matched["room"]);
    assert_eq!(text.eval("window.__cameraAsks").await, 0);
    assert!(
        video.eval("window.__cameraAsks").await.as_u64() >= Some(1),
        "the video page asked for its camera"
    );
    assert_no_console_errors(&[video, text]).await;
}

/// Someone whose browser refuses the camera: the video chat page says so and offers Text;
/// the switch link takes it to a text chat page (no video, the camera not asked for again)
/// where it still meets a text user; back on the landing page, Text is picked for it, with
/// the reason said, until it picks otherwise. The landing and chat pages also say how many
/// are on each mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_camera_text_is_offered_and_picked() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let server = TestServer::start(&[]).await;
    let base = format!("http://{}", server.addr);
    let page = Browser::launch(&tools, "NoCam", &base, Media::Denied).await;
    page.add_init_script(COUNT_CAMERA_ASKS).await;
    page.open("/chat?start=1").await;
    page.wait_for(
        "__strangers.state === 'waiting' && window.__cameraAsks >= 1 && \
         /permission denied/i.test(document.getElementById('video-notice').textContent)",
        "the video page asked for the camera, was refused, and says so",
        PATIENCE,
    )
    .await;
    assert!(
        page.is_displayed("#switch-mode").await,
        "the switch to Text is offered"
    );
    page.click_css("#switch-mode").await;
    page.wait_for(
        "location.search.includes('mode=text') && window.__strangers && \
         __strangers.mode === 'text' && __strangers.state === 'waiting'",
        "the text chat page, waiting",
        PATIENCE,
    )
    .await;
    let seen = page
        .eval("({ videos: document.querySelectorAll('video').length, asks: window.__cameraAsks })")
        .await;
    assert_eq!(
        seen,
        json!({ "videos": 0, "asks": 0 }),
        "no video, no camera asked"
    );

    // The one waiting is on text now, as the page's own count says.
    page.wait_for(
        "/1 on text/.test(document.getElementById('online-count').textContent)",
        "the chat page counts the text user",
        PATIENCE,
    )
    .await;
    let lang = page
        .eval("navigator.language.split('-')[0].toLowerCase()")
        .await;
    let mut stranger = server.client().await;
    stranger
        .send(json!({"type": "join", "mode": "text", "lang": lang}))
        .await;
    stranger.recv_type("waiting").await;
    let matched = stranger.recv_type("matched").await;
    assert_eq!(matched["mode"], "text");
    assert_eq!(wait_room(&page).await, matched["room"].as_str().unwrap());

    page.open("/").await;
    let landing = page
        .wait_for(
            "(() => { const hint = document.getElementById('mode-hint'); \
               const mode = document.querySelector('input[name=mode]:checked').value; \
               return mode === 'text' && !hint.hidden && hint.textContent; })()",
            "Text picked on the landing page, with the reason",
            PATIENCE,
        )
        .await;
    assert!(
        landing.as_str().unwrap().contains("blocked"),
        "the landing page says the camera is blocked: {landing}"
    );
    // Leaving the chat page ended its session and the stranger's room; the stranger looks
    // again. The landing page, counted afresh on each visit, shows the one text user, once
    // the server has seen the page's session go (a visit may come before that).
    stranger.recv_type("left").await;
    stranger
        .send(json!({"type": "join", "mode": "text", "lang": lang}))
        .await;
    stranger.recv_type("waiting").await;
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let count = page
            .eval("document.querySelector('.online').textContent")
            .await;
        let count = count.as_str().unwrap().to_string();
        if count.contains("1 online now") && count.contains("0 on video · 1 on text") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the landing page counts the text user waiting: {count}"
        );
        page.open("/").await;
    }
    // A choice the user makes (and starts with) is kept over the suggestion.
    page.click_css("input[name=mode][value=video]").await;
    page.click_button("Start").await;
    page.wait_for(
        "location.pathname === '/chat' && !location.search.includes('mode=text')",
        "the video chat page",
        PATIENCE,
    )
    .await;
    page.open("/").await;
    let mode = page
        .wait_for(
            "document.readyState === 'complete' && \
             document.querySelector('input[name=mode]:checked').value",
            "the landing page loaded",
            PATIENCE,
        )
        .await;
    assert_eq!(mode, "video", "the user's own choice is remembered");
    assert_no_console_errors(&[&page]).await;
}

/// A text chat page is gated as the video page is, in a browser that has never been here:
/// `/chat?mode=text&start=1` (in German, `?lang=de`) shows the 18+ box unticked in the page's
/// language, says to tick it, keeps Start off and sends no join, though it is connected and
/// has solved its challenge; ticked, Start sends a text join that carries the confirmation
/// and a solution beside its mode, and the server queues it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_chat_page_asks_for_the_18_plus_confirmation_and_solves_the_proof_of_work() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let server = TestServer::start(&[]).await;
    let base = format!("http://{}", server.addr);
    let pages = Browser::launch_all(&tools, &base, &[("T", Media::Fake)]).await;
    let t = &pages[0];
    t.add_init_script(COUNT_CAMERA_ASKS).await;
    t.install_recorder().await;
    t.open_as_is("/chat?mode=text&start=1&lang=de").await;
    // The notice is shown for a few seconds from the page's start: waited for, not sampled.
    t.wait_for(
        "document.getElementById('status').textContent.includes('Häkchen')",
        "the page says, in German, to tick the box",
        PATIENCE,
    )
    .await;
    t.wait_for(
        "__strangers.gate.lastSolve !== null && document.getElementById('conn').dataset.status === 'connected'",
        "connected, with the welcome's challenge solved",
        PATIENCE,
    )
    .await;
    let seen = t
        .eval(
            "({ label: document.querySelector('.check.adult label').textContent, \
              ticked: document.getElementById('adult').checked, \
              start: document.getElementById('start').disabled, state: __strangers.state, \
              joins: __rec.sent.filter((m) => m.type === 'join' || m.type === 'next').length })",
        )
        .await;
    assert!(
        seen["label"]
            .as_str()
            .unwrap()
            .contains("Ich bin mindestens 18 Jahre alt"),
        "{seen}"
    );
    assert_eq!(seen["ticked"], false, "{seen}");
    assert_eq!(
        seen["start"], true,
        "Start is off before the box is ticked: {seen}"
    );
    assert_eq!(seen["state"], "idle", "{seen}");
    assert_eq!(seen["joins"], 0, "no join before the box is ticked: {seen}");
    assert_eq!(server.health().await["waiting"], 0);

    t.click_css("#adult").await;
    t.click_css("#start").await;
    common::wait_waiting(server.addr, 1, "T joined once the box was ticked").await;
    let join = t.eval("__rec.sent.find((m) => m.type === 'join')").await;
    assert_eq!(join["mode"], "text", "{join}");
    assert_eq!(join["adult"], true, "{join}");
    assert!(join["pow"].is_u64(), "the join carries a solution: {join}");
    assert_eq!(t.eval("window.__cameraAsks").await, 0);
    assert_no_console_errors(&[t]).await;
}
