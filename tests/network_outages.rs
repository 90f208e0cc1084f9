//! Scenario 5 of the network lab (see `tests/lab`): outages in a running call. One home's
//! cable is unplugged for 3 s, 10 s and 35 s, and its router's public address changes under
//! the call (every NAT mapping flushed). Each time the same call recovers with nobody
//! pressing anything: the stranger's picture decodes again within 3 s of the network coming
//! back, both pages say the call is interrupted within about 2 s of the picture freezing,
//! neither ever says the call failed, and the cut-off page is back on signaling (a new
//! socket, its room back) within 3 s. The recovery times are printed.
//!
//! Runs as root; without root it says so loudly and skips, except in CI.

mod browser_harness;
mod lab;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use browser_harness as harness;
use browser_harness::Page;
use lab::pages::{meet, open_chat};
use lab::services::Offer;
use lab::{Home, Lab, bounded};
use serde_json::Value;

/// Samples, every 50 ms inside the page, the video frames its call has decoded and its
/// room, and notes every change of the status line (times in epoch milliseconds).
const WATCH: &str = r#"(() => {
  if (window.__labWatch) return true;
  const w = (window.__labWatch = { samples: [], statuses: [] });
  const now = () => performance.timeOrigin + performance.now();
  const status = document.getElementById('status');
  const note = () => w.statuses.push({ t: now(), text: status.textContent });
  note();
  new MutationObserver(note).observe(status, { childList: true, characterData: true, subtree: true });
  setInterval(async () => {
    const s = window.__strangers;
    const pc = s && s.pc;
    let frames = 0, packets = 0;
    if (pc) {
      try {
        (await pc.getStats()).forEach((r) => {
          if (r.type === 'inbound-rtp' && r.kind === 'video') { frames += r.framesDecoded || 0; packets += r.packetsReceived || 0; }
        });
      } catch { /* closed */ }
    }
    w.samples.push({ t: now(), frames, packets, room: s ? s.room : null });
    if (w.samples.length > 6000) w.samples.shift();
  }, 50);
  return true;
})()"#;

/// What happened on the page around an outage from `down` to `up` (epoch ms): when the
/// picture froze, how long after `up` it moved again (`recovered`, null until it has), when
/// the page first said the call was interrupted, every status shown, the rooms seen, and
/// when the page opened a new signaling socket and got its room back.
const OUTCOME: &str = r#"((down, up) => {
  const w = window.__labWatch;
  const before = w.samples.filter((s) => s.t <= down);
  let frames = before.length ? before.at(-1).frames : 0;
  let frozeAt = down;
  for (const s of w.samples) {
    if (s.t <= down || s.t > up) continue;
    if (s.frames > frames) { frames = s.frames; frozeAt = s.t; }
  }
  const back = w.samples.find((s) => s.t > up && s.frames > frames);
  const packetsAtUp = (w.samples.filter((s) => s.t <= up).at(-1) || { packets: 0 }).packets;
  const packetsBack = w.samples.find((s) => s.t > up && s.packets > packetsAtUp);
  const told = w.statuses.find((x) => x.t >= down && x.text.startsWith('Connection interrupted'));
  const msgs = window.__rec.msgs;
  const opened = msgs.find((m) => m.type === '_open' && m.t > down);
  const resumed = msgs.find((m) => m.type === 'resumed' && m.t > down);
  return {
    recovered: back ? Math.round(back.t - up) : null,
    packetsBack: packetsBack ? Math.round(packetsBack.t - up) : null,
    role: window.__strangers.role,
    frozeAfterDown: Math.round(frozeAt - down),
    toldAfterFreeze: told ? Math.round(told.t - frozeAt) : null,
    failed: w.statuses.filter((x) => /fail/i.test(x.text)).map((x) => x.text),
    statuses: w.statuses.filter((x) => x.t >= down).map((x) => `${Math.round(x.t - down)} ms: ${x.text}`),
    rooms: [...new Set(w.samples.filter((s) => s.t >= down).map((s) => s.room))],
    reconnected: opened ? Math.round(opened.t - up) : null,
    resumed: resumed ? Math.round(resumed.t - up) : null,
    pings: window.__rec.sent.filter((m) => m.type === 'ping' && m.t > down - 5000).map((m) => Math.round(m.t - down)),
    pongs: msgs.filter((m) => m.type === 'pong' && m.t > down - 5000).map((m) => Math.round(m.t - down)),
    sockets: msgs.filter((m) => m.type[0] === '_' && m.t > down - 5000).map((m) => `${m.type} ${Math.round(m.t - down)}`),
  };
})"#;

/// What a user sees in a recovered call.
const CONNECTED: &str = "Connected to a stranger. Say hi!";

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// What one disruption did to the call, from both pages.
struct Disruption {
    name: String,
    /// When the disruption began and when the network was whole again (epoch ms).
    down: f64,
    up: f64,
    /// Whether the picture froze (an unplugged cable) or only the addresses changed.
    freezes: bool,
}

impl Disruption {
    /// Waits for both pages to recover and checks everything the scenario promises.
    async fn check(&self, pages: [&Page; 2], room: &str, cut_off: &Page) {
        let expr = format!("{OUTCOME}({}, {})", self.down, self.up);
        for page in pages {
            let outcome = page
                .wait_for(
                    &format!(
                        "(() => {{ const o = {expr}; return o.recovered !== null && \
                         (!{signaling} || (o.reconnected !== null && o.resumed !== null)) && o; }})()",
                        signaling = std::ptr::eq(page, cut_off) && self.up - self.down >= 10_000.0
                    ),
                    &format!("the picture moving again after {}", self.name),
                    Duration::from_secs(12),
                )
                .await;
            eprintln!("{}, {}: {outcome}", self.name, page.name);
            let recovered = outcome["recovered"].as_f64().unwrap_or(f64::MAX);
            assert!(
                recovered <= 3000.0,
                "{}: {}: the picture moved again {recovered} ms after the network came back \
                 (at most 3 s): {outcome}",
                page.name,
                self.name
            );
            assert_eq!(
                outcome["failed"],
                Value::Array(vec![]),
                "{}: {}: the page said the call failed while it could (and did) recover",
                page.name,
                self.name
            );
            assert_eq!(
                outcome["rooms"],
                serde_json::json!([room]),
                "{}: {}: the same call all along",
                page.name,
                self.name
            );
            if self.freezes {
                let told = outcome["toldAfterFreeze"].as_f64().unwrap_or(f64::MAX);
                assert!(
                    told <= 2500.0,
                    "{}: {}: the page said the call was interrupted {told} ms after the \
                     picture froze (about 2 s at most): {outcome}",
                    page.name,
                    self.name
                );
            }
            if std::ptr::eq(page, cut_off) && self.up - self.down >= 10_000.0 {
                for key in ["reconnected", "resumed"] {
                    let after = outcome[key].as_f64().unwrap_or(f64::MAX);
                    assert!(
                        after <= 3000.0,
                        "{}: {}: signaling {key} {after} ms after the network came back \
                         (a dead socket is noticed during the outage, a new one opens as \
                         soon as it is over): {outcome}",
                        page.name,
                        self.name
                    );
                }
            }
            page.wait_for(
                &format!("document.getElementById('status').textContent === {CONNECTED:?}"),
                "the status saying the call is back",
                Duration::from_secs(5),
            )
            .await;
        }
    }
}

/// A and B in a call, each page watched; returns the lab's pages and the room.
async fn call(lab: &Lab) -> (Vec<lab::browser::HomeBrowser>, String) {
    let pages = lab.browsers(&[(0, "A"), (1, "B")]).await;
    open_chat(&pages[0]).await;
    open_chat(&pages[1]).await;
    let room = meet(&pages[0], &pages[1]).await;
    for page in &pages {
        page.eval(WATCH).await;
    }
    (pages, room)
}

/// Unplugs home 0's cable for `outage` and checks the call recovers.
async fn unplug(lab: &Lab, pages: [&Page; 2], room: &str, outage: Duration) {
    let down = epoch_ms();
    lab.link(0).set_down(true);
    tokio::time::sleep(outage).await; // the outage itself, not a wait for something
    lab.link(0).set_down(false);
    let up = epoch_ms();
    let disruption = Disruption {
        name: format!("a {} s outage", outage.as_secs()),
        down,
        up,
        freezes: true,
    };
    disruption.check(pages, room, pages[0]).await;
}

/// 5. Outages of 3 s and 10 s, then a change of the home's public address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_outages_and_a_new_public_address_keep_the_call() {
    let _turn = harness::exclusive().await;
    let Some(lab) = Lab::start(&[Home::EIM, Home::EIM], Offer::Turn) else {
        return;
    };
    bounded(Duration::from_secs(120), async {
        let (browsers, room) = call(&lab).await;
        let pages = [&*browsers[0], &*browsers[1]];
        unplug(&lab, pages, &room, Duration::from_secs(3)).await;
        unplug(&lab, pages, &room, Duration::from_secs(10)).await;
        let at = epoch_ms();
        let address = lab.rebind(0);
        let disruption = Disruption {
            name: format!("a new public address ({address})"),
            down: at,
            up: at,
            freezes: false,
        };
        disruption.check(pages, &room, pages[0]).await;
        lab::pages::assert_no_errors_but_reconnects(&pages).await;
    })
    .await;
    lab.assert_contained();
}

/// 5. An outage of 35 s: ICE gives up on the old path, the signaling socket dies; both come
/// back as soon as the network does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_35_second_outage_keeps_the_call() {
    let _turn = harness::exclusive().await;
    let Some(lab) = Lab::start(&[Home::EIM, Home::EIM], Offer::Turn) else {
        return;
    };
    bounded(Duration::from_secs(120), async {
        let (browsers, room) = call(&lab).await;
        let pages = [&*browsers[0], &*browsers[1]];
        unplug(&lab, pages, &room, Duration::from_secs(35)).await;
        lab::pages::assert_no_errors_but_reconnects(&pages).await;
    })
    .await;
    lab.assert_contained();
}
