//! A minimal WebDriver BiDi client (the W3C protocol Firefox speaks natively, on the
//! WebSocket its session announces as `webSocketUrl`): commands with their answers, and the
//! page's console, uncaught errors and failed loads, gathered as they happen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::console::LogEntry;
use super::trace;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// One BiDi connection to one browser.
pub struct Bidi {
    name: String,
    sink: tokio::sync::Mutex<SplitSink<Socket, Message>>,
    pending: Pending,
    log: Arc<Mutex<Vec<LogEntry>>>,
    next_id: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
}

impl Bidi {
    /// Connects to `url` (loopback) and subscribes to the log and to finished responses.
    pub async fn connect(name: &str, url: &str) -> Result<Bidi, String> {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| format!("WebDriver BiDi at {url}: {e}"))?;
        let (sink, stream) = socket.split();
        let pending: Pending = Arc::default();
        let log = Arc::default();
        let reader = tokio::spawn(read(
            name.to_string(),
            stream,
            Arc::clone(&pending),
            Arc::clone(&log),
        ));
        let bidi = Bidi {
            name: name.to_string(),
            sink: tokio::sync::Mutex::new(sink),
            pending,
            log,
            next_id: AtomicU64::new(1),
            reader,
        };
        bidi.command(
            "session.subscribe",
            json!({ "events": ["log.entryAdded", "network.responseCompleted"] }),
        )
        .await?;
        Ok(bidi)
    }

    /// Sends one command and waits for its result.
    pub async fn command(&self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let text = json!({ "id": id, "method": method, "params": params }).to_string();
        let sent = self
            .sink
            .lock()
            .await
            .send(Message::Text(text.into()))
            .await;
        sent.map_err(|e| format!("{}: BiDi {method}: {e}", self.name))?;
        let reply = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .map_err(|_| format!("{}: BiDi {method}: no answer within 30 s", self.name))?
            .map_err(|_| format!("{}: BiDi {method}: the connection closed", self.name))?;
        if reply["type"] == "success" {
            Ok(reply["result"].clone())
        } else {
            Err(format!(
                "{}: BiDi {method} failed: {} {}",
                self.name, reply["error"], reply["message"]
            ))
        }
    }

    /// The log entries gathered since the last call.
    pub fn take_log(&self) -> Vec<LogEntry> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Drop for Bidi {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Hands each answer to its command and keeps each event that is a log entry.
async fn read(
    name: String,
    mut stream: futures_util::stream::SplitStream<Socket>,
    pending: Pending,
    log: Arc<Mutex<Vec<LogEntry>>>,
) {
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if let Some(id) = value["id"].as_u64() {
            if let Some(tx) = pending.lock().unwrap().remove(&id) {
                let _ = tx.send(value);
            }
        } else if let Some(entry) = log_entry(&value) {
            trace(&format!(
                "{name}: console {} [{}] {}",
                entry.level, entry.source, entry.message
            ));
            log.lock().unwrap().push(entry);
        }
    }
    // Dropping the senders tells every waiting command that the connection is gone.
    pending.lock().unwrap().clear();
}

/// A BiDi event as a log entry in chromedriver's terms (level SEVERE/WARNING/INFO, source
/// `console-api`, `javascript` or `network`), so one rule ([`super::is_app_error`]) judges
/// both engines: `log.entryAdded` (console calls, uncaught exceptions, unhandled
/// rejections) and `network.responseCompleted` with an HTTP error status.
fn log_entry(event: &Value) -> Option<LogEntry> {
    let params = &event["params"];
    match event["method"].as_str()? {
        "log.entryAdded" => Some(LogEntry {
            level: match params["level"].as_str().unwrap_or_default() {
                "error" => "SEVERE",
                "warn" => "WARNING",
                _ => "INFO",
            }
            .to_string(),
            source: match params["type"].as_str().unwrap_or_default() {
                "console" => "console-api".to_string(),
                other => other.to_string(),
            },
            message: params["text"].as_str().unwrap_or_default().to_string(),
        }),
        "network.responseCompleted" => {
            let status = params["response"]["status"].as_u64()?;
            (status >= 400).then(|| LogEntry {
                level: "SEVERE".to_string(),
                source: "network".to_string(),
                message: format!(
                    "{} {status} (failed to load resource)",
                    params["request"]["url"].as_str().unwrap_or("?")
                ),
            })
        }
        _ => None,
    }
}
