//! Reports and temporary bans: who reported whom, the append-only store that keeps it, and
//! the rule that turns several reports into a ban.
//!
//! Users are known here only by a [`ClientKey`]: a salted hash of their IP address, so the
//! store never holds a raw address. Reports from several distinct users against the same key
//! within a window ban that key for a while. The store is a JSON-lines file, appended by a
//! task of its own (the lobby never waits on the disk) and replayed at start-up, so reports
//! and bans survive a restart.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::io::{self, BufRead, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::protocol::ReportReason;

/// A salted hash of a client's IP address: stable for one salt, useless without it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(pub [u8; 16]);

impl ClientKey {
    /// The key of `ip` under `salt`.
    pub fn of(ip: IpAddr, salt: &[u8]) -> ClientKey {
        let mut mac =
            hmac::Hmac::<sha1::Sha1>::new_from_slice(salt).expect("HMAC takes keys of any length");
        match ip {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let digest = mac.finalize().into_bytes();
        let mut key = [0; 16];
        key.copy_from_slice(&digest[..16]);
        ClientKey(key)
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientKey({self})")
    }
}

impl Serialize for ClientKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::str::FromStr for ClientKey {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const BAD: &str = "a client key is 32 hex characters";
        if text.len() != 32 || !text.is_ascii() {
            return Err(BAD);
        }
        let mut key = [0; 16];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| BAD)?;
        }
        Ok(ClientKey(key))
    }
}

impl<'de> Deserialize<'de> for ClientKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One report, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub reporter: ClientKey,
    pub reported: ClientKey,
    pub reason: ReportReason,
}

/// Milliseconds since the Unix epoch, now. Bans outlive restarts, so they use wall time.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// When reports become a ban.
#[derive(Clone, Copy, Debug)]
pub struct BanRule {
    /// Distinct reporters needed.
    pub reporters: usize,
    /// Within this long.
    pub window: Duration,
    /// How long the ban lasts.
    pub ban_for: Duration,
}

impl Default for BanRule {
    fn default() -> Self {
        BanRule {
            reporters: 3,
            window: Duration::from_secs(10 * 60),
            ban_for: Duration::from_secs(60 * 60),
        }
    }
}

/// The ban state: recent reports per reported key and the bans in force. No I/O.
#[derive(Debug, Default)]
pub struct Moderation {
    rule: BanRule,
    /// Reports within the window, per reported key: (when, by whom), oldest first.
    recent: HashMap<ClientKey, VecDeque<(u64, ClientKey)>>,
    /// Bans in force: key → until (ms).
    bans: HashMap<ClientKey, u64>,
}

impl Moderation {
    pub fn new(rule: BanRule) -> Moderation {
        Moderation {
            rule,
            ..Moderation::default()
        }
    }

    /// Counts a report; returns the end of a ban it starts, if it starts one. A report of
    /// oneself (two tabs behind one address) counts for nothing.
    pub fn record(&mut self, report: &Report) -> Option<u64> {
        if report.reporter == report.reported {
            return None;
        }
        let window = self.rule.window.as_millis() as u64;
        let list = self.recent.entry(report.reported).or_default();
        list.push_back((report.at_ms, report.reporter));
        while list
            .front()
            .is_some_and(|(at, _)| at + window < report.at_ms)
        {
            list.pop_front();
        }
        let distinct: HashSet<ClientKey> = list.iter().map(|(_, by)| *by).collect();
        if distinct.len() < self.rule.reporters {
            return None;
        }
        list.clear();
        let until = report.at_ms + self.rule.ban_for.as_millis() as u64;
        let entry = self.bans.entry(report.reported).or_insert(0);
        *entry = (*entry).max(until);
        Some(*entry)
    }

    /// Until when `key` is banned, if it is at `now_ms`.
    pub fn banned_until(&mut self, key: ClientKey, now_ms: u64) -> Option<u64> {
        match self.bans.get(&key) {
            Some(&until) if until > now_ms => Some(until),
            Some(_) => {
                self.bans.remove(&key);
                None
            }
            None => None,
        }
    }
}

/// The append-only report file.
#[derive(Debug)]
pub struct ReportStore {
    path: PathBuf,
}

impl ReportStore {
    pub fn new(path: impl Into<PathBuf>) -> ReportStore {
        ReportStore { path: path.into() }
    }

    /// Every report stored so far (lines that do not parse are skipped with a warning).
    pub fn load(&self) -> io::Result<Vec<Report>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut reports = Vec::new();
        for (n, line) in io::BufReader::new(file).lines().enumerate() {
            let line = line?;
            match serde_json::from_str(&line) {
                Ok(report) => reports.push(report),
                Err(e) => tracing::warn!(line = n + 1, error = %e, "skipping a bad report line"),
            }
        }
        Ok(reports)
    }

    /// Starts the task that appends reports; the returned log hands them to it. The task
    /// ends once every log handle is dropped and what was queued is written.
    pub fn spawn_writer(self) -> (ReportLog, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Report>(1024);
        let task = tokio::spawn(async move {
            while let Some(report) = rx.recv().await {
                let path = self.path.clone();
                let written = tokio::task::spawn_blocking(move || append(&path, &report)).await;
                if let Ok(Err(e)) | Err(e) = written.map_err(io::Error::other) {
                    tracing::error!(error = %e, "could not store a report");
                }
            }
        });
        (ReportLog { tx }, task)
    }

    /// The salt of client keys: kept beside the store (created once, at random), so keys in
    /// the store keep their meaning across restarts.
    pub fn salt(&self) -> io::Result<Vec<u8>> {
        let path = self.path.with_extension("salt");
        match std::fs::read(&path) {
            Ok(salt) if salt.len() >= 16 => Ok(salt),
            Ok(_) | Err(_) => {
                let salt: [u8; 32] = rand::random();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&path, salt)?;
                Ok(salt.to_vec())
            }
        }
    }
}

fn append(path: &Path, report: &Report) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut line = serde_json::to_vec(report).map_err(io::Error::other)?;
    line.push(b'\n');
    file.write_all(&line)?;
    file.sync_data()
}

/// Where the lobby sends reports to be stored.
#[derive(Clone, Debug)]
pub struct ReportLog {
    tx: mpsc::Sender<Report>,
}

impl ReportLog {
    /// A log whose reports go to `tx` (the store's writer task).
    pub fn new(tx: mpsc::Sender<Report>) -> ReportLog {
        ReportLog { tx }
    }

    /// Queues `report` for the store without waiting.
    pub fn append(&self, report: Report) {
        if self.tx.try_send(report).is_err() {
            tracing::error!("report store is not keeping up; a report was not stored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> ClientKey {
        ClientKey([n; 16])
    }

    fn report(by: u8, against: u8, at_ms: u64) -> Report {
        Report {
            at_ms,
            reporter: key(by),
            reported: key(against),
            reason: ReportReason::Spam,
        }
    }

    #[test]
    fn keys_hide_the_address_and_depend_on_the_salt() {
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let a = ClientKey::of(ip, b"salt one");
        assert_eq!(a, ClientKey::of(ip, b"salt one"));
        assert_ne!(a, ClientKey::of(ip, b"salt two"));
        assert!(!a.to_string().contains("203"));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<ClientKey>(&json).unwrap(), a);
    }

    #[test]
    fn three_distinct_reporters_within_the_window_ban() {
        let mut m = Moderation::new(BanRule::default());
        assert_eq!(m.record(&report(1, 9, 0)), None);
        assert_eq!(
            m.record(&report(1, 9, 1000)),
            None,
            "the same reporter twice is one"
        );
        assert_eq!(
            m.record(&report(9, 9, 1000)),
            None,
            "reporting oneself counts for nothing"
        );
        assert_eq!(m.record(&report(2, 9, 2000)), None);
        let until = m.record(&report(3, 9, 3000)).expect("banned");
        assert_eq!(until, 3000 + 3_600_000);
        assert_eq!(m.banned_until(key(9), 4000), Some(until));
        assert_eq!(m.banned_until(key(9), until), None, "over when it ends");
        assert_eq!(
            m.banned_until(key(1), 4000),
            None,
            "reporters are not banned"
        );
    }

    #[test]
    fn reports_outside_the_window_do_not_add_up() {
        let mut m = Moderation::new(BanRule::default());
        let ten_minutes = 600_000;
        m.record(&report(1, 9, 0));
        m.record(&report(2, 9, 1));
        assert_eq!(m.record(&report(3, 9, ten_minutes + 2)), None);
    }

    #[tokio::test]
    async fn the_store_appends_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("strangers-reports-{}", std::process::id()));
        let path = dir.join("reports.jsonl");
        let _ = std::fs::remove_dir_all(&dir);
        let store = ReportStore::new(&path);
        let salt = store.salt().unwrap();
        assert_eq!(
            ReportStore::new(&path).salt().unwrap(),
            salt,
            "the salt is kept"
        );
        let (log, writer) = store.spawn_writer();
        log.append(report(1, 2, 10));
        log.append(report(3, 2, 20));
        drop(log);
        writer.await.unwrap();
        let loaded = ReportStore::new(&path).load().unwrap();
        assert_eq!(loaded, vec![report(1, 2, 10), report(3, 2, 20)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
