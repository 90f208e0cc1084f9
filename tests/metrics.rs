//! `/metrics` speaks the Prometheus text format (checked by Prometheus's own `promtool`) and
//! counts what happened. One test per binary: the metrics recorder is process-wide.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{TestServer, http_get};
use serde_json::json;

/// The value of the sample line that starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

/// After a call with some signaling, a refused message and a hang-up, the metrics show it,
/// and promtool accepts the exposition.
#[tokio::test]
async fn metrics_count_sessions_matches_relays_errors_and_closes() {
    let server = TestServer::start(&[]).await;
    let (mut a, mut b, room) = server.pair().await;
    for _ in 0..3 {
        a.send(json!({"type": "chat", "room": room, "text": "hi"}))
            .await;
        b.recv_type("chat").await;
    }
    a.send_text("nonsense".into()).await;
    a.recv_type("error").await;
    let mut c = server.client().await;
    c.join().await;

    let (status, head, text) = http_get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(head.to_lowercase().contains("text/plain"), "{head}");
    assert_eq!(sample(&text, "strangers_sessions "), 3.0);
    assert_eq!(sample(&text, "strangers_waiting "), 1.0);
    assert_eq!(sample(&text, "strangers_rooms "), 1.0);
    assert_eq!(sample(&text, "strangers_matches_total "), 1.0);
    assert_eq!(
        sample(&text, "strangers_relayed_total{type=\"chat\"} "),
        3.0
    );
    assert_eq!(
        sample(&text, "strangers_errors_total{code=\"bad_message\"} "),
        1.0
    );
    assert_eq!(sample(&text, "strangers_time_to_match_seconds_count "), 2.0);
    assert!(text.contains("strangers_time_to_match_seconds_bucket{le=\"0.1\"}"));

    drop(a);
    assert_eq!(b.recv_type("left").await["reason"], "disconnected");
    let (_, _, text) = http_get(server.addr, "/metrics").await;
    assert_eq!(
        sample(&text, "strangers_closes_total{reason=\"client_closed\"} "),
        1.0
    );
    assert_eq!(sample(&text, "strangers_sessions "), 2.0);

    promtool_accepts(&text);
}

/// Runs `promtool check metrics` on the exposition. CI installs Debian's `prometheus`
/// package; a laptop without it skips this part loudly.
fn promtool_accepts(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED promtool check ({e}): apt-get install prometheus");
            return;
        }
        Err(e) => panic!("promtool is required in CI: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool rejected the metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
