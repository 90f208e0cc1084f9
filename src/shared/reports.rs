//! The report store when the queue is shared: every instance's reports in one Redis list,
//! each new one also published, so a client reported on several instances is banned on all.
//!
//! Keys: `P:salt` (the salt of client keys, made once by whichever instance comes first, so
//! one address has one key everywhere), `P:reports` (the reports, one JSON object each, the
//! newest [`KEEP`] kept). Channel: `P:reports`, carrying `<instance> <report as JSON>`.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use super::SharedConfig;
use crate::ids::InstanceId;
use crate::moderation::{Report, ReportLog};

/// How many reports the list keeps (bans only look back one window plus the ban's length;
/// this is ample), as the file store keeps at most [`MAX_KEPT`](crate::moderation::MAX_KEPT).
const KEEP: isize = crate::moderation::MAX_KEPT as isize;

/// The channel every instance hears reports on.
pub fn channel(config: &SharedConfig) -> String {
    format!("{}:reports", config.key_prefix())
}

/// What an instance reads at start: the shared salt and every stored report.
pub struct Stored {
    pub salt: Vec<u8>,
    pub reports: Vec<Report>,
}

/// Reads the salt (making it if this is the first instance ever) and the stored reports.
pub async fn load(config: &SharedConfig) -> Result<Stored, redis::RedisError> {
    let mut conn = connect(config).await?;
    let prefix = config.key_prefix();
    let salt_key = format!("{prefix}:salt");
    let fresh: [u8; 32] = rand::random();
    let fresh: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
    let _: bool = conn.set_nx(&salt_key, &fresh).await?;
    let salt: String = conn.get(&salt_key).await?;
    let lines: Vec<String> = conn.lrange(format!("{prefix}:reports"), 0, -1).await?;
    let reports = lines
        .iter()
        .filter_map(|line| match serde_json::from_str(line) {
            Ok(report) => Some(report),
            Err(e) => {
                tracing::warn!(error = %e, "skipping a bad report in redis");
                None
            }
        })
        .collect();
    Ok(Stored {
        salt: salt.into_bytes(),
        reports,
    })
}

/// Starts the task that stores this instance's reports in Redis and tells the others.
pub fn spawn_writer(config: &SharedConfig, me: InstanceId) -> Result<ReportLog, redis::RedisError> {
    let (tx, mut rx) = mpsc::channel::<Report>(1024);
    let client = redis::Client::open(config.url.as_str())?;
    let manager = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(config.timeout));
    let mut conn = ConnectionManager::new_lazy_with_config(client, manager)?;
    let list = format!("{}:reports", config.key_prefix());
    let channel = channel(config);
    tokio::spawn(async move {
        while let Some(report) = rx.recv().await {
            let Ok(line) = serde_json::to_string(&report) else {
                continue;
            };
            let stored = redis::pipe()
                .rpush(&list, &line)
                .ignore()
                .ltrim(&list, -KEEP, -1)
                .ignore()
                .publish(&channel, format!("{me} {line}"))
                .ignore()
                .query_async::<()>(&mut conn)
                .await;
            if let Err(e) = stored {
                tracing::error!(error = %e, "could not store a report in redis");
            }
        }
    });
    Ok(ReportLog::new(tx))
}

/// Reads a report another instance published; `None` for our own or a malformed one.
pub fn decode(me: InstanceId, payload: &str) -> Option<Report> {
    let (from, json) = payload.split_once(' ')?;
    if from == me.to_string() {
        return None;
    }
    serde_json::from_str(json).ok()
}

async fn connect(config: &SharedConfig) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(config.url.as_str())?;
    let manager = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(config.timeout))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_with_config(client, manager).await
}
