//! One call's timeline, read from the harness's recorder ([`RECORDER`](super::RECORDER)) in
//! a page: when the button was clicked, `matched` came, the SDP went and came, ICE checked
//! and connected, DTLS finished ("connected"), the first picture arrived and was shown, and
//! the safety blur came off it. Both benchmarks print it in parts, so each figure can be set
//! beside what the network alone would cost.

use serde_json::{Value, json};

use super::Page;

/// The timeline of one call on a page, in epoch milliseconds (`null` for what did not
/// happen). Called with the id of the button whose last click starts it (or null) and the
/// room.
const TIMELINE: &str = r#"((clickId, room) => {
  const rec = window.__rec;
  const clicks = rec.clicks.filter((c) => c.id === clickId);
  const click = clicks.length ? clicks.at(-1).t : null;
  const handled = clicks.length ? clicks.at(-1).done : null;
  const from = click === null ? -Infinity : click;
  const matched = rec.msgs.find((m) => m.type === 'matched' && m.room === room && m.t >= from);
  if (!matched) return { error: 'no matched for ' + room };
  // The call's peer connection: the one that connects after `matched` (it may have been made
  // ahead of it; one made after it may be the next call's, made ahead).
  const pc = rec.pcs.find((p) => p.states.some((s) => s.s === 'connected' && s.t >= matched.t))
    || rec.pcs.find((p) => p.created >= matched.t);
  const first = (xs, pred) => { const x = xs.find(pred); return x ? x.t : null; };
  const after = (xs, pred) => first(xs, (x) => x.t >= matched.t && pred(x));
  const frame = rec.frames.find((f) => f.room === room);
  const clear = (rec.clear || []).find((c) => c.room === room);
  return {
    click,
    handled,
    sent: first(rec.sent, (m) => m.t >= from && (m.type === 'join' || m.type === 'next')),
    matched: matched.t,
    pcCreated: pc ? pc.created : null,
    firstCandidate: pc ? pc.firstCandidate : null,
    sdpSent: first(rec.sent, (m) => m.t >= matched.t && (m.type === 'offer' || m.type === 'answer')),
    sdpReceived: first(rec.msgs, (m) => m.room === room && (m.type === 'offer' || m.type === 'answer')),
    checking: pc ? after(pc.ice, (s) => s.s === 'checking') : null,
    iceConnected: pc ? after(pc.ice, (s) => s.s === 'connected' || s.s === 'completed') : null,
    connected: pc ? after(pc.states, (s) => s.s === 'connected') : null,
    frameReceived: frame ? frame.receive : null,
    frame: frame ? frame.t : null,
    unblurred: clear ? clear.t : null,
  };
})"#;

impl Page {
    /// The [`TIMELINE`] of the call in `room`, from the last click on `click_id` (`None`:
    /// from the page's `matched`).
    pub async fn timeline(&self, click_id: Option<&str>, room: &str) -> Value {
        let t = self
            .eval(&format!("{TIMELINE}({}, {})", json!(click_id), json!(room)))
            .await;
        assert!(t.get("error").is_none(), "{}: {t}", self.name);
        t
    }
}

impl Page {
    /// Waits until this page, waiting, has sent the early offer of its current wait (the
    /// last `join` or `next` it sent): a waiter who has waited a moment, whose stranger gets
    /// the offer in `matched`.
    pub async fn wait_early_offer_sent(&self, timeout: std::time::Duration) {
        self.wait_for(
            "(() => { const s = window.__rec.sent; \
               const j = s.findLastIndex((m) => m.type === 'join' || m.type === 'next'); \
               return j >= 0 && s.slice(j).some((m) => m.type === 'early_offer'); })()",
            "the waiter's early offer sent",
            timeout,
        )
        .await;
    }

    /// Waits until the stranger's video in `room` is shown unblurred (its first verdict was
    /// "safe"), or the safety notice says no verdict can come (the model failed to load).
    pub async fn wait_unblurred(&self, room: &str, timeout: std::time::Duration) {
        let condition = format!(
            "window.__rec.clear.some((c) => c.room === {room}) || \
               document.getElementById('safety-notice').dataset.kind === 'failed'",
            room = json!(room)
        );
        self.wait_for(&condition, "the stranger's video unblurred", timeout)
            .await;
    }
}

/// `t[to] - t[from]` in ms, or NaN when either is missing.
pub fn span(t: &Value, from: &str, to: &str) -> f64 {
    match (t[from].as_f64(), t[to].as_f64()) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    }
}

/// Named series of milliseconds, printed as a table of medians.
#[derive(Default)]
pub struct Samples(Vec<(String, Vec<f64>)>);

impl Samples {
    /// Adds one figure to the series `name` (NaN, for a step that did not happen, is left
    /// out).
    pub fn add(&mut self, name: &str, ms: f64) {
        let series = match self.0.iter().position(|(n, _)| n == name) {
            Some(i) => &mut self.0[i].1,
            None => {
                self.0.push((name.to_string(), Vec::new()));
                &mut self.0.last_mut().expect("just pushed").1
            }
        };
        if !ms.is_nan() {
            series.push(ms);
        }
    }

    /// The median of `name`, if it has figures.
    pub fn median(&self, name: &str) -> Option<f64> {
        let (_, v) = self.0.iter().find(|(n, _)| n == name)?;
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(v[n / 2]),
            _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    }

    /// Prints a Markdown table: median, min, max and count of each series.
    pub fn print(&self, title: &str) {
        println!("\n{title}\n");
        println!("| measure | median ms | min ms | max ms | runs |");
        println!("| --- | ---: | ---: | ---: | ---: |");
        for (name, v) in &self.0 {
            let Some(median) = self.median(name) else {
                println!("| {name} | — | — | — | 0 |");
                continue;
            };
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            println!(
                "| {name} | {median:.0} | {min:.0} | {max:.0} | {} |",
                v.len()
            );
        }
    }
}

/// The steps of a call from `matched` to its stranger's face, on one page: each from the
/// step before it, so they add up.
pub fn add_call_parts(parts: &mut Samples, t: &Value) {
    parts.add("matched → offer/answer sent", span(t, "matched", "sdpSent"));
    parts.add(
        "matched → first local candidate",
        span(t, "matched", "firstCandidate"),
    );
    parts.add("matched → ICE checking", span(t, "matched", "checking"));
    parts.add(
        "ICE checking → ICE connected",
        span(t, "checking", "iceConnected"),
    );
    parts.add(
        "ICE connected → connected (DTLS)",
        span(t, "iceConnected", "connected"),
    );
    parts.add(
        "connected → first frame received",
        span(t, "connected", "frameReceived"),
    );
    parts.add(
        "first frame received → shown",
        span(t, "frameReceived", "frame"),
    );
    parts.add(
        "first frame shown → unblurred",
        span(t, "frame", "unblurred"),
    );
}
