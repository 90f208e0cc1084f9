//! The pages in the user's language, in real browsers: a Chromium whose user prefers
//! Spanish gets the landing page in Spanish; the language switcher changes it and the choice
//! is remembered on the next visit; and the chat page's own words (status line, chat log,
//! who said what) come out in the chosen language while the stranger's page, in a browser
//! that asks for English, stays English. A text chat between two Spanish browsers says in
//! Spanish that they speak the same language, naming it in Spanish, and the switcher keeps
//! a text chat page a text chat page.
//!
//! The expected words are read from the catalogs (`i18n/*.json`), so a better translation
//! does not break the test; what must hold is that each page shows its own language's.
//! Without Chromium the test is skipped loudly, except in CI, where that is a failure.

mod browser_harness;
mod common;
mod scenarios;

use browser_harness as harness;
use browser_harness::{Browser, Media, PATIENCE, Page, assert_no_console_errors};
use common::TestServer;
use fantoccini::Locator;
use scenarios::{wait_chat_line, wait_room};
use serde_json::json;

/// The sentence `key` of `i18n/<code>.json` (the `other` form of a plural message).
fn word(code: &str, key: &str) -> String {
    let path = format!("{}/i18n/{code}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let catalog: serde_json::Value = serde_json::from_str(&text).expect("a catalog");
    let message = &catalog[key];
    message
        .as_str()
        .or_else(|| message["other"].as_str())
        .unwrap_or_else(|| panic!("{path} has no {key}"))
        .to_string()
}

/// Waits until `page` is written in `code`, and its element `css` shows `text`.
async fn wait_page_in(page: &Page, code: &str, css: &str, text: &str) {
    let condition = format!(
        "document.documentElement.lang === {code} && \
         document.querySelector({css})?.textContent.trim() === {text}",
        code = json!(code),
        css = json!(css),
        text = json!(text)
    );
    page.wait_for(
        &condition,
        &format!("the page in {code:?} with {css} saying {text:?}"),
        PATIENCE,
    )
    .await;
}

/// Waits until the chat log of `page` has the system line `text`.
async fn wait_system_line(page: &Page, text: &str) {
    let condition = format!(
        "[...document.querySelectorAll('#chat-log li.msg.system')].some((li) => li.textContent.trim() === {})",
        json!(text)
    );
    page.wait_for(&condition, &format!("the chat log line {text:?}"), PATIENCE)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_speak_the_browser_language_and_the_switcher_choice_is_remembered() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let server = TestServer::start(&[]).await;
    let base = format!("http://{}", server.addr);
    let spanish = ["--accept-lang=es".to_string()];
    let (a, b) = tokio::join!(
        Browser::launch_chromium_with(&tools, "ES", &base, Media::Fake, &spanish),
        Browser::launch(&tools, "EN", &base, Media::Fake),
    );

    // A Spanish browser gets the landing page in Spanish.
    a.open("/").await;
    wait_page_in(&a, "es", "h1", &word("es", "landing.heading")).await;
    let start = a
        .eval("document.querySelector('.start-form button').textContent.trim()")
        .await;
    assert_eq!(start, json!(word("es", "landing.start")));

    // The switcher changes the page's language…
    let select = a
        .client
        .find(Locator::Css("#lang-select"))
        .await
        .expect("the language switcher");
    select
        .select_by_value("fr")
        .await
        .expect("picking French in the switcher");
    wait_page_in(&a, "fr", "h1", &word("fr", "landing.heading")).await;

    // …and a later visit, with the browser still asking for Spanish, is in French.
    a.open("/").await;
    wait_page_in(&a, "fr", "h1", &word("fr", "landing.heading")).await;
    let chosen = a.eval("document.getElementById('lang-select').value").await;
    assert_eq!(chosen, "fr", "the switcher shows the language in use");

    // Start leads to the chat page, whose client speaks French while it looks…
    a.click_button(&word("fr", "landing.start")).await;
    wait_page_in(&a, "fr", "#status", &word("fr", "client.looking")).await;
    common::wait_waiting(server.addr, 1, "A is looking").await;

    // …and in the call; the stranger's browser asks for English and gets English.
    b.open("/chat?start=1").await;
    let (room_a, room_b) = tokio::join!(wait_room(&a), wait_room(&b));
    assert_eq!(room_a, room_b);
    wait_system_line(&a, &word("fr", "client.talking")).await;
    wait_system_line(&b, &word("en", "client.talking")).await;
    let lang_b = b.eval("document.documentElement.lang").await;
    assert_eq!(lang_b, "en");

    b.type_into("#chat-input", "hello\n").await;
    wait_chat_line(&a, "stranger", "hello").await;
    let who = a
        .eval("document.querySelector('#chat-log li.msg.stranger .who').textContent")
        .await;
    assert_eq!(who, json!(format!("{}:", word("fr", "client.stranger"))));

    b.click_button(&word("en", "chat.stop")).await;
    wait_system_line(&a, &word("fr", "client.stranger_left")).await;

    assert_no_console_errors(&[&a, &b]).await;
}

/// Two Chromiums whose users prefer Spanish choose Texto on the landing page and press
/// Empezar: the text chat page is Spanish, the line over the chat names the language they
/// share in Spanish (the browser's own names of languages), and picking French in the
/// switcher reloads the page in French, still a text chat page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_chat_speaks_the_page_language_and_names_the_shared_one_in_it() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let server = TestServer::start(&[]).await;
    let base = format!("http://{}", server.addr);
    let spanish = ["--accept-lang=es".to_string()];
    let (a, b) = tokio::join!(
        Browser::launch_chromium_with(&tools, "ES-A", &base, Media::Fake, &spanish),
        Browser::launch_chromium_with(&tools, "ES-B", &base, Media::Fake, &spanish),
    );
    for page in [&a, &b] {
        page.open("/").await;
        wait_page_in(page, "es", "h1", &word("es", "landing.heading")).await;
        let speak = page.eval("document.getElementById('speak').value").await;
        assert_eq!(
            speak, "es",
            "{}: the browser's language is preselected",
            page.name
        );
        page.click_css("input[name=mode][value=text]").await;
        page.click_button(&word("es", "landing.start")).await;
    }
    let (room_a, room_b) = tokio::join!(wait_room(&a), wait_room(&b));
    assert_eq!(room_a, room_b);
    let shared = word("es", "client.both_speak").replace("{language}", "español");
    for page in [&a, &b] {
        wait_page_in(page, "es", "#common", &shared).await;
        wait_page_in(page, "es", "#status", &word("es", "client.text_connected")).await;
        wait_page_in(page, "es", "#switch-mode", &word("es", "chat.switch_video")).await;
        let seen = page
            .eval(
                "({ mode: document.getElementById('chat-page').dataset.mode, \
                  videos: document.querySelectorAll('video').length, title: document.title })",
            )
            .await;
        assert_eq!(seen["mode"], "text", "{}: {seen}", page.name);
        assert_eq!(seen["videos"], 0, "{}: {seen}", page.name);
        assert_eq!(
            seen["title"],
            json!(word("es", "chat.title_text")),
            "{}: {seen}",
            page.name
        );
    }
    b.type_into("#chat-input", "hola\n").await;
    wait_chat_line(&a, "stranger", "hola").await;
    assert_no_console_errors(&[&a, &b]).await;

    // The switcher reloads the page in French, and it is still the text chat page.
    let select = a
        .client
        .find(Locator::Css("#lang-select"))
        .await
        .expect("the language switcher");
    select
        .select_by_value("fr")
        .await
        .expect("picking French in the switcher");
    wait_page_in(&a, "fr", "#switch-mode", &word("fr", "chat.switch_video")).await;
    let mode = a
        .eval("document.getElementById('chat-page').dataset.mode")
        .await;
    assert_eq!(mode, "text", "the switcher keeps the text chat page");
}
