//! How long a user waits for a stranger's picture, in real browsers on loopback:
//! `cargo bench --bench browser` (`-- --runs N` for more runs than the default 10,
//! `-- --chromium-only` without the Firefox half).
//!
//! Headless pages (one browser each, fake camera) talk to the real server on 127.0.0.1, as in
//! `tests/browser.rs`: first all Chromium (Chromium↔Chromium), then A in Chromium with B and
//! C in Firefox (Chromium↔Firefox: every call measured is between the two engines), the
//! latter in a private network namespace (see `harness::netns`; it needs root, and is
//! skipped loudly without it or without Firefox). Every time is taken inside the pages by the harness's
//! recorder (`harness::RECORDER`: the click event's own timestamp, the arrival of `matched`,
//! the `connectionstatechange` to "connected", and the presentation time of the first
//! picture of the new room on `#remote-video` from `requestVideoFrameCallback`, and when
//! the safety blur came off it), in epoch milliseconds shared by all browsers on the
//! machine, so WebDriver round trips never count. The steps between are printed too
//! (`harness::timeline`). Each call goes on until its face is unblurred before the next
//! click, as a user looks at a face before pressing Next.
//!
//! - **Start**: A waits in the queue; B, freshly loaded (its camera not yet open, as for a
//!   user who just arrived), presses Start. Measured from B's click: B matched, both peer
//!   connections connected, B's first frame of A, and both pages' first frames.
//! - **Next**: A and B are talking and C waits in the queue (with the next call made
//!   ahead: C has sent its early offer). A presses Next. Measured from
//!   A's click: A matched with C, both connected, A's first frame of C. The one A left
//!   (Auto-next, a one second pause) queues again before the next run, and is who A meets
//!   then; that pause is not in the measured path.
//!
//! Each is measured twice in the same run, for Chromium↔Chromium: with the next call made
//! ahead (warm peer connection, early offer: the product) and with `?ahead=0` (the flow
//! before it), so the two are compared under the same load. For each mix and flow, all Start
//! runs come first, then the Next runs; one warm-up run of each kind is made first and not
//! counted. The load average before and after is printed: the figures mean
//! something only on an otherwise idle machine.

#[path = "../tests/browser_harness/mod.rs"]
mod harness;

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use harness::Engine::{self, Chromium, Firefox};
use harness::timeline::{Samples, add_call_parts, span};
use harness::{Browser, Media, PATIENCE, Page, Tools};
use serde_json::{Value, json};

fn main() {
    let mut runs = 10usize;
    // `--chromium-only`: leave out the Chromium↔Firefox half.
    let mut firefox = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        firefox &= arg != "--chromium-only";
        if arg == "--runs" {
            runs = args
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|&n| n >= 1)
                .expect("--runs takes a positive number");
        }
        // cargo passes --bench; other libtest flags mean nothing here.
    }
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    for flow in FLOWS {
        rt.block_on(bench(&tools, runs, [Chromium, Chromium, Chromium], flow));
    }
    drop(rt);
    if !firefox {
        return;
    }
    // Firefox gathers candidates only on a default-route interface: its calls run in a
    // private network namespace, on a thread of their own (the namespace is the thread's).
    let Some(tools) = harness::firefox_tools_or_skip() else {
        return;
    };
    std::thread::spawn(move || {
        harness::netns::block_on_inside(|| {
            bench(&tools, runs, [Chromium, Firefox, Firefox], FLOWS[0])
        })
    })
    .join()
    .expect("the Firefox benchmark");
}

/// The two flows compared: the product's, and the one before the next call was made ahead.
const FLOWS: [(&str, &str); 2] = [("made ahead", ""), ("before (?ahead=0)", "?ahead=0")];

/// Waits until `page` is in a call other than `not_room`, connected and showing a first
/// picture of it; returns the room.
async fn wait_first_frame(page: &Page, not_room: Option<&str>) -> String {
    let condition = format!(
        "(() => {{ const s = window.__strangers; const room = s && s.room; \
           return room && room !== {} && s.pc && s.pc.connectionState === 'connected' && \
             window.__rec.frames.some((f) => f.room === room) && room; }})()",
        json!(not_room)
    );
    page.wait_for(&condition, "the first picture of a new call", PATIENCE)
        .await
        .as_str()
        .expect("a room")
        .to_string()
}

/// Waits until the server's queue holds `n` users (who meets whom is then decided).
async fn wait_queue(server: &TestServer, n: u64) {
    let deadline = Instant::now() + PATIENCE;
    while server.health().await["waiting"].as_u64() != Some(n) {
        assert!(Instant::now() < deadline, "the queue never held {n}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// With the next call made ahead (`query` empty), waits until the waiting `page` has sent
/// the early offer of its current wait (one who joined a few milliseconds before the click
/// meets the flow without it).
async fn wait_offer_ahead(page: &Page, query: &str) {
    if query.is_empty() {
        page.wait_early_offer_sent(PATIENCE).await;
    }
}

/// Opens the chat page (with `query`) and waits for the server's welcome.
async fn fresh_chat(page: &Page, query: &str) {
    page.open(&format!("/chat{query}")).await;
    page.wait_for(
        "document.getElementById('conn').dataset.status === 'connected'",
        "the server's welcome",
        PATIENCE,
    )
    .await;
}

/// `chromium --version` or `firefox-esr --version`, trimmed.
fn version(tools: &Tools, engine: Engine) -> String {
    let (browser, _) = tools.programs(engine);
    String::from_utf8_lossy(
        &std::process::Command::new(browser)
            .arg("--version")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .trim()
    .to_string()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// All the runs with A, B and C in the engines given: B presses Start (so B's engine is the
/// fresh page's) and A presses Next, meeting B and C in turn.
async fn bench(tools: &Tools, runs: usize, engines: [Engine; 3], (flow, query): (&str, &str)) {
    // The default proof of work, and no more (every page is on 127.0.0.1, one network, which
    // would otherwise pay more and more): Next must not wait for a solve at this difficulty.
    let server = TestServer::start(&["--pow-bits", "18", "--pow-max-bits", "18"]).await;
    let base = format!("http://{}", server.addr);
    let pages = Browser::launch_each(
        tools,
        &base,
        &[
            (engines[0], "A", Media::Fake),
            (engines[1], "B", Media::Fake),
            (engines[2], "C", Media::Fake),
        ],
    )
    .await;
    let [a, b, c] = &pages[..] else {
        unreachable!()
    };
    for page in [a, b, c] {
        page.install_recorder().await;
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mix = format!(
        "{}↔{}, {flow}",
        engines[0].name(),
        if engines[1] == engines[0] {
            engines[0].name()
        } else {
            engines[1].name()
        }
    );
    println!(
        "\n## {mix}\n\nbrowser bench: {runs} runs (+1 warm-up) of each kind, {cores} cores, A {}, B and C {}, load average {}",
        version(tools, engines[0]),
        version(tools, engines[1]),
        loadavg()
    );

    start_runs(&server, runs, &mix, query, a, b).await;
    next_runs(&server, runs, &mix, query, [a, b, c]).await;
    println!("\nload average at the end: {}", loadavg());
    for page in [a, b, c] {
        print_safety(page).await;
    }
    let problems: Vec<String> = futures_util::future::join_all(
        [a, b, c].map(|p| async move { (p.name.clone(), p.console_errors().await) }),
    )
    .await
    .into_iter()
    .filter(|(_, e)| !e.is_empty())
    .map(|(n, e)| format!("{n}: {e:?}"))
    .collect();
    if !problems.is_empty() {
        eprintln!("console errors during the bench: {problems:?}");
    }
}

/// The Start runs: fresh pages (no camera open yet, nobody waiting); A presses Start, then
/// B. Prints the figures.
async fn start_runs(server: &TestServer, runs: usize, mix: &str, query: &str, a: &Page, b: &Page) {
    let mut start = Samples::default();
    let mut start_parts = Samples::default();
    for run in 0..=runs {
        // Fresh pages: no camera open yet, nobody waiting.
        for page in [a, b] {
            fresh_chat(page, query).await;
        }
        wait_queue(server, 0).await;
        a.click_button("Start").await;
        wait_queue(server, 1).await;
        wait_offer_ahead(a, query).await;
        b.click_button("Start").await;
        let (room, room_a) = tokio::join!(wait_first_frame(b, None), wait_first_frame(a, None));
        assert_eq!(room, room_a);
        // A user looks at the face before pressing anything: the call goes on until it shows.
        b.wait_unblurred(&room, PATIENCE).await;
        let tb = b.timeline(Some("start"), &room).await;
        let ta = a.timeline(Some("start"), &room).await;
        let click = tb["click"].as_f64().expect("B's click");
        let at = |t: &Value, k: &str| t[k].as_f64().map_or(f64::NAN, |x| x - click);
        if run == 0 {
            eprintln!("Start warm-up: B {tb}\n  A {ta}");
            continue;
        }
        start.add("Start → matched", at(&tb, "matched"));
        start.add(
            "Start → both connected",
            at(&tb, "connected").max(at(&ta, "connected")),
        );
        start.add(
            "Start → first remote frame (B, who pressed)",
            at(&tb, "frame"),
        );
        start.add(
            "Start → first remote frame on both pages",
            at(&tb, "frame").max(at(&ta, "frame")),
        );
        start.add("Start → face unblurred (B)", at(&tb, "unblurred"));
        start_parts.add(
            "click → join sent (camera opened)",
            span(&tb, "click", "sent"),
        );
        start_parts.add("join sent → matched", span(&tb, "sent", "matched"));
        add_call_parts(&mut start_parts, &tb);
        eprintln!(
            "Start run {run}: matched {:.0}, connected {:.0}, frame {:.0} ms",
            at(&tb, "matched"),
            at(&tb, "connected"),
            at(&tb, "frame")
        );
    }
    start.print(&format!(
        "{mix}: Start (B presses Start while A waits; B's page freshly loaded)"
    ));
    start_parts.print(&format!("{mix}: Start, B's timeline in parts"));
}

/// The Next runs. A and B are in a call from the last Start run. C comes and waits. A
/// presses Next again and again; each time the one A left looks again after Auto-next's
/// pause, and is the one A meets next time. Prints the figures.
async fn next_runs(
    server: &TestServer,
    runs: usize,
    mix: &str,
    query: &str,
    [a, b, c]: [&Page; 3],
) {
    let mut room = a
        .eval("__strangers.room")
        .await
        .as_str()
        .unwrap()
        .to_string();
    fresh_chat(c, query).await;
    c.click_button("Start").await;
    wait_queue(server, 1).await;
    let mut next = Samples::default();
    let mut next_parts = Samples::default();
    let mut waiter_parts = Samples::default();
    let (mut partner, mut waiting): (&Page, &Page) = (b, c);
    for run in 0..=runs {
        wait_offer_ahead(waiting, query).await;
        a.click_button("Next").await;
        let (new_room, room_w) = tokio::join!(
            wait_first_frame(a, Some(&room)),
            wait_first_frame(waiting, Some(&room)),
        );
        assert_eq!(
            new_room, room_w,
            "A meets {}, who was waiting",
            waiting.name
        );
        a.wait_unblurred(&new_room, PATIENCE).await;
        let ta = a.timeline(Some("next"), &new_room).await;
        let tw = waiting.timeline(None, &new_room).await;
        // The one A left queues again by itself after Auto-next's pause.
        wait_queue(server, 1).await;
        std::mem::swap(&mut partner, &mut waiting);
        room = new_room;
        let click = ta["click"].as_f64().expect("A's click");
        let at = |t: &Value, k: &str| t[k].as_f64().map_or(f64::NAN, |x| x - click);
        if run == 0 {
            eprintln!("Next warm-up: A {ta}\n  peer {tw}");
            continue;
        }
        next.add("Next → matched", at(&ta, "matched"));
        next.add(
            "Next → both connected",
            at(&ta, "connected").max(at(&tw, "connected")),
        );
        next.add("Next → first frame from the new partner", at(&ta, "frame"));
        next.add(
            "Next → the new partner's face unblurred",
            at(&ta, "unblurred"),
        );
        next_parts.add("click → next sent", span(&ta, "click", "sent"));
        next_parts.add(
            "click → Next's handler done (old call closed)",
            span(&ta, "click", "handled"),
        );
        next_parts.add("next sent → matched", span(&ta, "sent", "matched"));
        add_call_parts(&mut next_parts, &ta);
        add_call_parts(&mut waiter_parts, &tw);
        eprintln!(
            "Next run {run}: matched {:.0}, connected {:.0}, frame {:.0} ms (A is the {})",
            at(&ta, "matched"),
            at(&ta, "connected"),
            at(&ta, "frame"),
            a.eval("__strangers.role").await
        );
    }
    next.print(&format!("{mix}: Next (A presses Next while C waits)"));
    next_parts.print(&format!("{mix}: Next, A's timeline in parts"));
    waiter_parts.print(&format!(
        "{mix}: Next, the waiter's timeline in parts (it offers)"
    ));
}

/// What the page's safety check cost over the run: its model load and the median time of
/// one classification (the unblur of each call waits for one).
async fn print_safety(page: &Page) {
    let stats = page
        .eval("window.__strangers && window.__strangers.safety || null")
        .await;
    let mut runs: Vec<f64> = stats["runs"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    runs.sort_by(f64::total_cmp);
    let median = runs.get(runs.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "{}: safety check on {}, model loaded in {} ms, {} classifications, median {median:.0} ms, {} blank frames skipped",
        page.name,
        stats["backend"],
        stats["loadMs"],
        runs.len(),
        stats["blank"]
    );
}
