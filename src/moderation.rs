//! Reports and temporary bans: who reported whom, the append-only store that keeps it, and
//! the rule that turns several reports into a ban.
//!
//! Users are known here only by a [`ClientKey`]: a salted hash of their network (IPv4 address
//! or IPv6 /64), so the store never holds a raw address. Reports from several distinct users
//! against the same key within a window ban that key for a while; counting them is O(1) per
//! report, so replaying a store of any shape at start-up is linear. A report of oneself, or
//! one repeating a report the same person made against the same key within the window,
//! neither counts nor is stored.
//!
//! The store is a JSON-lines file, appended by a task of its own (the lobby never waits on
//! the disk) and replayed at start-up, so reports and bans survive a restart. It is bounded:
//! it is compacted at start-up and after every [`COMPACT_EVERY`] appends to the reports
//! younger than the window plus the ban's length (older ones can start no ban that is still
//! in force), the newest [`MAX_KEPT`] of them at most; so the file never holds more than
//! `MAX_KEPT + COMPACT_EVERY` lines (about 10 MiB at ~150 bytes a line).

use std::collections::{HashMap, VecDeque};
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
        // One key per network: an IPv6 client can take any address of its /64.
        match crate::admission::client_network(ip) {
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

/// Reports after which the store is compacted.
pub const COMPACT_EVERY: usize = 20_000;

/// The most reports a compacted store keeps (the newest).
pub const MAX_KEPT: usize = 50_000;

/// The ban state: recent reports per reported key and the bans in force. No I/O.
#[derive(Debug, Default)]
pub struct Moderation {
    /// When reports become a ban.
    rule: BanRule,
    /// Reports within the window, per reported key.
    recent: HashMap<ClientKey, Recent>,
    /// Bans in force: key → until (ms).
    bans: HashMap<ClientKey, u64>,
    /// Reports recorded since stale entries were last swept out of `recent` and `bans`.
    since_sweep: usize,
}

/// The reports against one key within the window, each reporter once.
#[derive(Debug, Default)]
struct Recent {
    /// (when, by whom), oldest first: expired from the front.
    order: VecDeque<(u64, ClientKey)>,
    /// The reporters in `order`: their number is the count of distinct reporters, in O(1).
    by: HashMap<ClientKey, u64>,
}

impl Recent {
    /// Drops the reports older than `window` before `now_ms`.
    fn expire(&mut self, now_ms: u64, window: u64) {
        while let Some(&(at, by)) = self.order.front() {
            if at + window >= now_ms {
                break;
            }
            self.order.pop_front();
            if self.by.get(&by) == Some(&at) {
                self.by.remove(&by);
            }
        }
    }
}

impl Moderation {
    pub fn new(rule: BanRule) -> Moderation {
        Moderation {
            rule,
            ..Moderation::default()
        }
    }

    /// Whether `report` would count (and so is worth storing): not a report of oneself (two
    /// tabs behind one address), nor a repeat of a report by the same person against the
    /// same key within the window.
    pub fn is_news(&self, report: &Report) -> bool {
        if report.reporter == report.reported {
            return false;
        }
        let window = self.rule.window.as_millis() as u64;
        match self
            .recent
            .get(&report.reported)
            .and_then(|r| r.by.get(&report.reporter))
        {
            Some(&at) => at + window < report.at_ms,
            None => true,
        }
    }

    /// Counts a report; returns the end of a ban it starts, if it starts one. A report that
    /// is not [news](Self::is_news) counts for nothing. O(1), amortized.
    pub fn record(&mut self, report: &Report) -> Option<u64> {
        if !self.is_news(report) {
            return None;
        }
        self.since_sweep += 1;
        if self.since_sweep > self.recent.len().max(1024) {
            self.sweep(report.at_ms);
        }
        let window = self.rule.window.as_millis() as u64;
        let recent = self.recent.entry(report.reported).or_default();
        recent.expire(report.at_ms, window);
        if let Some(before) = recent.by.insert(report.reporter, report.at_ms) {
            // Its older report has left the window but not the queue yet: this one replaces it.
            recent
                .order
                .retain(|&(at, by)| (at, by) != (before, report.reporter));
        }
        recent.order.push_back((report.at_ms, report.reporter));
        if recent.by.len() < self.rule.reporters {
            return None;
        }
        self.recent.remove(&report.reported);
        let until = report.at_ms + self.rule.ban_for.as_millis() as u64;
        let entry = self.bans.entry(report.reported).or_insert(0);
        *entry = (*entry).max(until);
        Some(*entry)
    }

    /// Forgets keys with no report in the window and bans that are over, so memory follows
    /// what is live, not everything ever reported.
    fn sweep(&mut self, now_ms: u64) {
        let window = self.rule.window.as_millis() as u64;
        self.recent.retain(|_, recent| {
            recent.expire(now_ms, window);
            !recent.order.is_empty()
        });
        self.bans.retain(|_, until| *until > now_ms);
        self.since_sweep = 0;
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

    /// How long a stored report can still matter: a ban it helps start lasts until the ban's
    /// length after a report at most the window younger.
    pub fn horizon(&self) -> Duration {
        self.rule.window + self.rule.ban_for
    }
}

/// The append-only report file.
#[derive(Debug)]
pub struct ReportStore {
    /// The JSON-lines file.
    path: PathBuf,
    /// Reports older than this are dropped when the file is compacted.
    horizon: Duration,
}

impl ReportStore {
    /// The store at `path`, keeping reports for the default rule's horizon.
    pub fn new(path: impl Into<PathBuf>) -> ReportStore {
        let rule = BanRule::default();
        ReportStore {
            path: path.into(),
            horizon: rule.window + rule.ban_for,
        }
    }

    /// The same store keeping reports for `horizon` ([`Moderation::horizon`]).
    pub fn keeping(self, horizon: Duration) -> ReportStore {
        ReportStore { horizon, ..self }
    }

    /// The stored reports that can still matter (lines that do not parse are skipped with a
    /// warning); compacts the file to them when it held more.
    pub fn load(&self) -> io::Result<Vec<Report>> {
        let (reports, lines) = read_live(&self.path, self.horizon)?;
        if reports.len() < lines {
            rewrite(&self.path, &reports)?;
            tracing::info!(
                kept = reports.len(),
                dropped = lines - reports.len(),
                "report store compacted"
            );
        }
        Ok(reports)
    }

    /// Starts the task that appends reports; the returned log hands them to it. The task
    /// ends once every log handle is dropped and what was queued is written.
    pub fn spawn_writer(self) -> (ReportLog, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Report>(1024);
        let task = tokio::spawn(async move {
            let mut appended = 0;
            while let Some(report) = rx.recv().await {
                appended += 1;
                let compact = appended % COMPACT_EVERY == 0;
                let path = self.path.clone();
                let horizon = self.horizon;
                let written = tokio::task::spawn_blocking(move || {
                    append(&path, &report)?;
                    if compact {
                        let (live, _) = read_live(&path, horizon)?;
                        rewrite(&path, &live)?;
                    }
                    Ok(())
                })
                .await;
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

/// The reports of the file at `path` younger than `horizon`, the newest [`MAX_KEPT`] at
/// most, and how many lines the file had.
fn read_live(path: &Path, horizon: Duration) -> io::Result<(Vec<Report>, usize)> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let oldest = now_ms().saturating_sub(horizon.as_millis() as u64);
    let mut reports = VecDeque::new();
    let mut lines = 0;
    for (n, line) in io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        lines += 1;
        match serde_json::from_str::<Report>(&line) {
            Ok(report) if report.at_ms >= oldest => {
                if reports.len() == MAX_KEPT {
                    reports.pop_front();
                }
                reports.push_back(report);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(line = n + 1, error = %e, "skipping a bad report line"),
        }
    }
    Ok((reports.into(), lines))
}

/// Appends one report to the file at `path`, and syncs it.
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

/// Replaces the file at `path` with `reports`, atomically (a new file renamed over it).
fn rewrite(path: &Path, reports: &[Report]) -> io::Result<()> {
    let tmp = path.with_extension("compacting");
    let mut out = io::BufWriter::new(std::fs::File::create(&tmp)?);
    for report in reports {
        serde_json::to_writer(&mut out, report).map_err(io::Error::other)?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
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

    #[test]
    fn repeats_and_self_reports_are_not_news() {
        let mut m = Moderation::new(BanRule::default());
        assert!(!m.is_news(&report(9, 9, 0)), "oneself");
        assert!(m.is_news(&report(1, 9, 0)));
        m.record(&report(1, 9, 0));
        assert!(
            !m.is_news(&report(1, 9, 1000)),
            "a repeat within the window"
        );
        assert!(m.is_news(&report(1, 8, 1000)), "another target");
        assert!(
            m.is_news(&report(1, 9, 600_001)),
            "the same again once the first left the window"
        );
    }

    #[test]
    fn stale_targets_and_bans_are_swept_away() {
        let mut m = Moderation::new(BanRule::default());
        for n in 0..2_000u32 {
            let mut target = [0u8; 16];
            target[..4].copy_from_slice(&n.to_be_bytes());
            m.record(&Report {
                at_ms: u64::from(n),
                reporter: key(200),
                reported: ClientKey(target),
                reason: ReportReason::Spam,
            });
        }
        // Much later, reports against a few others: the old targets are gone from memory.
        for n in 0..3_000u32 {
            let mut by = [1u8; 16];
            by[..4].copy_from_slice(&n.to_be_bytes());
            m.record(&Report {
                at_ms: 100_000_000 + u64::from(n),
                reporter: ClientKey(by),
                reported: key((n % 2) as u8 + 100),
                reason: ReportReason::Spam,
            });
        }
        assert!(m.recent.len() <= 2, "{} targets kept", m.recent.len());
    }

    #[test]
    fn the_store_is_compacted_to_what_can_still_matter() {
        let dir = std::env::temp_dir().join(format!("strangers-compact-{}", std::process::id()));
        let path = dir.join("reports.jsonl");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let now = now_ms();
        let old = (0..100).map(|n| report(1, 2, now - 3 * 3_600_000 + n));
        let recent = (0..5).map(|n| report(3, 4, now - 1000 + n));
        let all: Vec<Report> = old.chain(recent).collect();
        rewrite(&path, &all).unwrap();
        let store = ReportStore::new(&path).keeping(Duration::from_secs(3600));
        let loaded = store.load().unwrap();
        assert_eq!(loaded.len(), 5, "only the last hour's reports");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 5, "and the file holds only them");
        std::fs::remove_dir_all(&dir).unwrap();
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
        let now = now_ms();
        log.append(report(1, 2, now));
        log.append(report(3, 2, now + 1));
        drop(log);
        writer.await.unwrap();
        let loaded = ReportStore::new(&path).load().unwrap();
        assert_eq!(loaded, vec![report(1, 2, now), report(3, 2, now + 1)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
