//! Time to a stranger's face on a network with real latency and loss:
//! `cargo bench --bench network` (`-- --runs N` for more than the default 10 runs), as root.
//!
//! Runs in the network lab of `tests/lab` (homes behind NAT routers, coturn and the release
//! binary on a public segment, one headless Chromium per home). For every network (RTT 0,
//! 80 and 200 ms between homes, and 80 ms with 2 % loss: each home's uplink holds every
//! packet for half the RTT) and both NAT setups (all endpoint-independent, so calls go
//! browser to browser; all symmetric, so every call goes through TURN), it measures:
//!
//! - **Start**: A waits in the queue; B, freshly loaded, presses Start. From B's click to
//!   the first picture of A presented on B's `#remote-video`.
//! - **Next**: A is talking to one stranger while another waits; A presses Next. From A's
//!   click to the first picture of the new stranger on A's page. Each call goes on until its
//!   safety blur is off before the next click, as a user looks at a face before pressing Next.
//!
//! Times come from the pages' own clocks (the harness's recorder: the click event's
//! timestamp, `requestVideoFrameCallback`'s presentation time), never WebDriver round
//! trips. Each is measured with the product's client (the next call made ahead: `ahead`)
//! and with the flow before it (`?ahead=0`: `before`) on the same lab, one after the other.
//! `-- --networks "RTT 0,RTT 80 ms"` measures only the networks named. With the next call
//! made ahead, each click waits until the waiter has sent its early offer. The floor printed for each RTT is 4.25 RTT: matched ½, offer ½ + ½, ICE 1,
//! DTLS 2, first packet ½. The load average before and after is printed: the figures mean
//! something only on a quiet machine.

#[path = "../tests/browser_harness/mod.rs"]
mod browser_harness;

#[path = "../tests/lab/mod.rs"]
mod lab;

use std::time::Duration;

use browser_harness::Page;
use browser_harness::timeline::{Samples, add_call_parts, span};
use lab::pages::{start_waiting, wait_new_picture, wait_picture, wait_welcome};
use lab::services::Offer;
use lab::{Home, Lab};

/// One network: RTT between two homes and uplink loss.
struct Network {
    name: &'static str,
    rtt_ms: u64,
    loss: f64,
}

const NETWORKS: [Network; 4] = [
    Network {
        name: "RTT 0",
        rtt_ms: 0,
        loss: 0.0,
    },
    Network {
        name: "RTT 80 ms",
        rtt_ms: 80,
        loss: 0.0,
    },
    Network {
        name: "RTT 200 ms",
        rtt_ms: 200,
        loss: 0.0,
    },
    Network {
        name: "RTT 80 ms, 2 % loss",
        rtt_ms: 80,
        loss: 0.02,
    },
];

fn main() {
    let mut runs = 10usize;
    let mut only: Option<Vec<String>> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--runs" {
            runs = args
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|&n| n >= 1)
                .expect("--runs takes a positive number");
        }
        // `--networks "RTT 0,RTT 80 ms"`: only the networks of these names.
        if arg == "--networks" {
            let list = args.next().expect("--networks takes a list of names");
            only = Some(list.split(',').map(|n| n.trim().to_string()).collect());
        }
    }
    ONLY.set(only).expect("set once");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(bench(runs));
}

/// The networks asked for with `--networks` (all when `None`).
static ONLY: std::sync::OnceLock<Option<Vec<String>>> = std::sync::OnceLock::new();

async fn bench(runs: usize) {
    println!("load average before: {}", load_average());
    let mut rows = Vec::new();
    for (setup, home) in [("EIM/EIM", Home::EIM), ("symmetric+TURN", Home::SYMMETRIC)] {
        let only = ONLY.get().and_then(Option::as_ref);
        let chosen = NETWORKS
            .iter()
            .filter(|n| only.is_none_or(|names| names.iter().any(|o| o == n.name)));
        for network in chosen {
            let Some(lab) = Lab::start(&[home, home, home], Offer::Turn) else {
                eprintln!("the network benchmark needs the lab (root); nothing measured");
                return;
            };
            for i in 0..3 {
                lab.link(i)
                    .set_uplink_delay(Duration::from_millis(network.rtt_ms / 2));
                lab.link(i).set_uplink_loss(network.loss);
            }
            for (flow, query) in FLOWS {
                let (start, next, parts) = measure(&lab, runs, query).await;
                for (kind, times) in [("Start", start), ("Next", next)] {
                    let row = Row::new(setup, network, flow, kind, times);
                    println!("{} (load {})", row.line(), load_average());
                    rows.push(row);
                }
                let [clicker, waiter] = parts;
                let title = format!("{setup}, {}, {flow}: Next", network.name);
                clicker.print(&format!("{title}, A's timeline in parts (A answers)"));
                waiter.print(&format!("{title}, the waiter's timeline in parts"));
            }
            lab.assert_contained();
        }
    }
    println!("\nload average after: {}\n", load_average());
    println!(
        "| NATs | network | flow | from | median | p10–p90 | runs | floor 4.25 RTT | median − floor |"
    );
    println!("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for row in &rows {
        println!("{}", row.markdown());
    }
}

/// The flows compared in the same run: the next call made ahead (the product's), and the
/// flow before it (`?ahead=0`).
const FLOWS: [(&str, &str); 2] = [("ahead", ""), ("before", "?ahead=0")];

/// Opens the chat page with `query` (the recorder installed) and waits for the welcome.
async fn open_chat(page: &Page, query: &str) {
    page.install_recorder().await;
    page.open(&format!("/chat{query}")).await;
    wait_welcome(page).await;
}

/// `runs` Start runs, then `runs` Next runs (one warm-up of each, not counted): the times in
/// milliseconds, and the Next calls' timelines in parts on A's page and the waiter's.
async fn measure(lab: &Lab, runs: usize, query: &str) -> (Vec<f64>, Vec<f64>, [Samples; 2]) {
    let pages = lab.browsers(&[(0, "A"), (1, "B"), (2, "C")]).await;
    let [a, b, c] = &pages[..] else {
        unreachable!()
    };
    let mut start = Vec::new();
    for run in 0..=runs {
        open_chat(a, query).await;
        open_chat(b, query).await;
        start_waiting(a).await;
        wait_offer_ahead(a, query).await;
        b.click_button("Start").await;
        let room = wait_picture(b).await;
        wait_picture(a).await;
        let ms = since_click(b, "start", &room).await;
        if run > 0 {
            start.push(ms);
        }
    }
    // A talks to B; C waits. Each Next, A meets whoever waits; the one left behind queues
    // again by Auto-next and is who A meets the time after.
    open_chat(c, query).await;
    start_waiting(c).await;
    let mut room = a
        .eval("window.__strangers.room")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut waiting = c;
    let mut talking = b;
    let mut next = Vec::new();
    let mut parts = [Samples::default(), Samples::default()];
    for run in 0..=runs {
        wait_offer_ahead(waiting, query).await;
        a.click_button("Next").await;
        let (new_room, _) = tokio::join!(wait_new_picture(a, &room), wait_picture(waiting));
        let ms = since_click(a, "next", &new_room).await;
        // A user looks at the face before pressing Next again: the call goes on until its
        // safety blur is off (and the connection made ahead for the next call is ready).
        a.wait_unblurred(&new_room, Duration::from_secs(20)).await;
        if run > 0 {
            next.push(ms);
            let ta = a.timeline(Some("next"), &new_room).await;
            let tw = waiting.timeline(None, &new_room).await;
            parts[0].add("click → next sent", span(&ta, "click", "sent"));
            parts[0].add("next sent → matched", span(&ta, "sent", "matched"));
            add_call_parts(&mut parts[0], &ta);
            // One machine, one clock: A's click and the waiter's steps compare directly.
            let click = ta["click"].as_f64().unwrap_or(f64::NAN);
            let since = |k: &str| tw[k].as_f64().map_or(f64::NAN, |t| t - click);
            parts[1].add("A's click → matched", since("matched"));
            parts[1].add("A's click → connected", since("connected"));
            parts[1].add(
                "matched → answer received",
                span(&tw, "matched", "sdpReceived"),
            );
            add_call_parts(&mut parts[1], &tw);
        }
        room = new_room;
        std::mem::swap(&mut waiting, &mut talking);
        waiting
            .wait_for(
                "window.__strangers.state === 'waiting' && !window.__strangers.room",
                "the one left behind waiting again",
                Duration::from_secs(15),
            )
            .await;
    }
    (start, next, parts)
}

/// With the next call made ahead (`query` empty), waits until the waiting `page` has sent
/// the early offer of its current wait (one who joined a few milliseconds before the click
/// meets the flow without it).
async fn wait_offer_ahead(page: &Page, query: &str) {
    if query.is_empty() {
        page.wait_early_offer_sent(Duration::from_secs(10)).await;
    }
}

/// Milliseconds from the page's last click on `#button` to its first picture in `room`.
async fn since_click(page: &Page, button: &str, room: &str) -> f64 {
    let expr = format!(
        "(() => {{ const rec = window.__rec; \
           const click = rec.clicks.filter((c) => c.id === {button:?}).at(-1); \
           const frame = rec.frames.find((f) => f.room === {room:?}); \
           return click && frame ? frame.t - click.t : null; }})()"
    );
    page.wait_for(&expr, "the first picture's time", Duration::from_secs(5))
        .await
        .as_f64()
        .unwrap_or_else(|| panic!("{}: no time from {button} to the picture", page.name))
}

/// One line of results.
struct Row {
    setup: &'static str,
    network: &'static str,
    /// Which client flow (made ahead, or before).
    flow: &'static str,
    kind: &'static str,
    rtt_ms: u64,
    times: Vec<f64>,
}

impl Row {
    fn new(
        setup: &'static str,
        network: &Network,
        flow: &'static str,
        kind: &'static str,
        mut times: Vec<f64>,
    ) -> Row {
        times.sort_by(f64::total_cmp);
        Row {
            setup,
            network: network.name,
            flow,
            kind,
            rtt_ms: network.rtt_ms,
            times,
        }
    }

    fn quantile(&self, q: f64) -> f64 {
        let i = ((self.times.len() - 1) as f64 * q).round() as usize;
        self.times[i]
    }

    fn floor(&self) -> f64 {
        4.25 * self.rtt_ms as f64
    }

    fn line(&self) -> String {
        format!(
            "{:<15} {:<20} {:<6} {:<5} median {:>5.0} ms  p10 {:>5.0}  p90 {:>5.0}  floor {:>4.0}  runs {}",
            self.setup,
            self.network,
            self.flow,
            self.kind,
            self.quantile(0.5),
            self.quantile(0.1),
            self.quantile(0.9),
            self.floor(),
            self.times.len()
        )
    }

    fn markdown(&self) -> String {
        let median = self.quantile(0.5);
        format!(
            "| {} | {} | {} | {} | {:.0} ms | {:.0}–{:.0} ms | {} | {:.0} ms | +{:.0} ms |",
            self.setup,
            self.network,
            self.flow,
            self.kind,
            median,
            self.quantile(0.1),
            self.quantile(0.9),
            self.times.len(),
            self.floor(),
            median - self.floor()
        )
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
