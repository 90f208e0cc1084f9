//! What the lab's scenarios do on, and read off, the real chat page: open it, press
//! Start, wait for the stranger's picture, and look at the call's candidates.

use std::time::Duration;

use serde_json::Value;

use crate::browser_harness::{self as harness, Page};

/// How long a call in the lab may take to show the stranger's picture. A failing ICE takes
/// about 16 s to give up; a call that works takes a few seconds, so this fails fast.
pub const CALL_PATIENCE: Duration = Duration::from_secs(20);

/// Opens the chat page (with the harness's recorder installed) and waits for the server's
/// welcome.
pub async fn open_chat(page: &Page) {
    page.install_recorder().await;
    page.open("/chat").await;
    wait_welcome(page).await;
}

/// Waits until the connection indicator says Connected and the welcome has been read.
pub async fn wait_welcome(page: &Page) {
    page.wait_for(
        "document.getElementById('conn').dataset.status === 'connected' && window.__rec.msgs.some((m) => m.type === 'welcome')",
        "the server's welcome",
        Duration::from_secs(15),
    )
    .await;
}

/// A presses Start and waits in the queue; then B presses Start; both wait for the
/// stranger's picture. Returns the room.
pub async fn meet(a: &Page, b: &Page) -> String {
    a.click_button("Start").await;
    a.wait_for(
        "window.__strangers.state === 'waiting' && window.__rec.msgs.some((m) => m.type === 'waiting')",
        "A waiting in the queue",
        Duration::from_secs(10),
    )
    .await;
    b.click_button("Start").await;
    let (room_a, room_b) = tokio::join!(wait_picture(a), wait_picture(b));
    assert_eq!(room_a, room_b, "A and B are in the same call");
    room_a
}

/// Waits until the page shows the stranger's decoded video in a connected call; returns
/// the room. A connection "failed" for 3 s in a row ends the wait at once (Chromium may say
/// "failed" for a moment and then connect).
pub async fn wait_picture(page: &Page) -> String {
    let condition = format!(
        r#"await (async () => {{
  const pc = window.__strangers && window.__strangers.pc;
  const now = performance.now();
  if (pc && pc.connectionState === 'failed') {{
    window.__labFailedSince = window.__labFailedSince || now;
    if (now - window.__labFailedSince >= 3000) return {{ failed: true, status: document.getElementById('status').textContent }};
    return false;
  }}
  window.__labFailedSince = 0;
  return {flowing};
}})()"#,
        flowing = harness::VIDEO_FLOWING
    );
    let seen = page
        .wait_for(&condition, "the stranger's picture", CALL_PATIENCE)
        .await;
    assert!(
        seen["failed"] != true,
        "{}: the call failed for good: {seen}\n  page: {}",
        page.name,
        page.describe().await
    );
    seen["room"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no room in {seen}", page.name))
        .to_string()
}

/// The current call's selected candidate pair, once ICE has one:
/// `{local: {type, address, port, protocol, relayProtocol}, remote: {…}, policy}`.
const SELECTED_PAIR: &str = r#"await (async () => {
  const pc = window.__strangers && window.__strangers.pc;
  if (!pc || pc.connectionState !== 'connected') return false;
  const stats = await pc.getStats();
  let pairId = null;
  // Chromium names it on the transport; Firefox marks the pair itself.
  stats.forEach((r) => { if (r.type === 'transport' && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId; });
  if (!pairId) stats.forEach((r) => { if (r.type === 'candidate-pair' && r.selected) pairId = r.id; });
  const pair = pairId && stats.get(pairId);
  if (!pair) return false;
  const cand = (id) => {
    const c = stats.get(id);
    return c && c.candidateType ? { type: c.candidateType, address: c.address, port: c.port, protocol: c.protocol, relayProtocol: c.relayProtocol || null } : null;
  };
  const local = cand(pair.localCandidateId), remote = cand(pair.remoteCandidateId);
  if (!local || !remote) return false;
  return { local, remote, policy: pc.getConfiguration().iceTransportPolicy };
})()"#;

/// The selected candidate pair of the page's call (see [`SELECTED_PAIR`]).
pub async fn selected_pair(page: &Page) -> Value {
    page.wait_for(
        SELECTED_PAIR,
        "a selected candidate pair",
        Duration::from_secs(5),
    )
    .await
}

/// Everything this page learned of the stranger's candidates: the candidate lines signaled
/// (`signaled`), those in SDPs received (`sdp`), and the remote candidates its ICE agent
/// knows (`seen`: `{type, address, port}`) for every peer connection it made.
pub async fn learned_candidates(page: &Page) -> Value {
    page.eval(
        r#"(async () => {
  const rec = window.__rec;
  const lines = (sdp) => sdp.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:'));
  const signaled = rec.msgs.filter((m) => m.type === 'candidate' && m.candidate).map((m) => m.candidate);
  // Relayed SDPs, and early offers that came inside `matched`.
  const sdp = rec.msgs.filter((m) => m.sdp || m.offer).flatMap((m) => lines(m.sdp || m.offer));
  const added = rec.pcs.flatMap((p) => p.added);
  const applied = rec.pcs.flatMap((p) => p.sdps).flatMap(lines);
  const seen = [];
  for (const pc of window.__recPcs) {
    if (pc.signalingState === 'closed') continue;
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'remote-candidate') seen.push({ type: r.candidateType, address: r.address, port: r.port });
    });
  }
  return { signaled, sdp, added, applied, seen };
})()"#,
    )
    .await
}

/// `candidate:… <address> <port> typ <type> …` → `(type, address, port)`.
pub fn parse_candidate(line: &str) -> Option<(String, String, u16)> {
    let line = line.strip_prefix("a=").unwrap_or(line);
    let fields: Vec<&str> = line.split_whitespace().collect();
    let typ = fields
        .iter()
        .position(|f| *f == "typ")
        .and_then(|i| fields.get(i + 1))?;
    let address = fields.get(4)?;
    let port = fields.get(5)?.parse().ok()?;
    Some((typ.to_string(), address.to_string(), port))
}

/// The status line under the video.
pub async fn status(page: &Page) -> String {
    page.eval("document.getElementById('status').textContent")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `page` presses Start and waits until the server has it in the queue.
pub async fn start_waiting(page: &Page) {
    page.click_button("Start").await;
    page.wait_for(
        "window.__strangers.state === 'waiting' && window.__rec.msgs.some((m) => m.type === 'waiting')",
        "waiting in the queue",
        Duration::from_secs(10),
    )
    .await;
}

/// `from`, in a call in room `old`, presses Next while `to` waits in the queue: the two
/// meet and see each other. Returns the new room.
pub async fn next_to(from: &Page, old: &str, to: &Page) -> String {
    from.click_button("Next").await;
    let (room_from, room_to) = tokio::join!(wait_new_picture(from, old), wait_picture(to));
    assert_eq!(
        room_from, room_to,
        "{} and {} are in the same call",
        from.name, to.name
    );
    room_from
}

/// Like [`wait_picture`], for a call in another room than `old`.
pub async fn wait_new_picture(page: &Page, old: &str) -> String {
    page.wait_for(
        &format!("window.__strangers.room && window.__strangers.room !== {old:?}"),
        "a new call",
        CALL_PATIENCE,
    )
    .await;
    let room = wait_picture(page).await;
    assert_ne!(room, old, "{}: a new stranger", page.name);
    room
}

/// `from` types `text` in the chat box and presses Send; it arrives in `to`'s chat log.
pub async fn chat(from: &Page, to: &Page, text: &str) {
    from.type_into("#chat-input", text).await;
    from.click_button("Send").await;
    to.wait_log_line(text, Duration::from_secs(10)).await;
}

/// Asserts that the page's call goes through the TURN relay (its own relay candidate or
/// the stranger's is in the selected pair) and returns the pair.
pub async fn assert_relayed(page: &Page) -> Value {
    let pair = selected_pair(page).await;
    assert!(
        pair["local"]["type"] == "relay" || pair["remote"]["type"] == "relay",
        "{}: the call goes through the relay: {pair}",
        page.name
    );
    pair
}

/// Like the harness's `assert_no_console_errors`, except that a failed attempt to open the
/// signaling socket is expected while the server restarts or the network is out (the
/// browser logs those itself; the page retries).
pub async fn assert_no_errors_but_reconnects(pages: &[&Page]) {
    let mut report = String::new();
    for page in pages {
        for line in page.console_errors().await {
            if !line.contains("WebSocket connection to") {
                report.push_str(&format!("  {}: {line}\n", page.name));
            }
        }
    }
    assert!(
        report.is_empty(),
        "console errors or uncaught exceptions:\n{report}"
    );
}
