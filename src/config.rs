//! The server's configuration: command-line flags, each with an environment-variable fallback.
//!
//! `strangers --help` documents every option. Invalid values fail at start-up with a message
//! that names the flag.

use std::net::SocketAddr;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};

use crate::ice::{IceConfig, Turn};

/// Meet a random stranger in a one-to-one video call.
#[derive(Parser, Clone, Debug)]
#[command(name = "strangers", version, about)]
pub struct Config {
    /// Address to listen on. A bare `PORT` variable (as hosting platforms set it) replaces
    /// just the port of the default.
    #[arg(long, env = "STRANGERS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// STUN server URLs offered to browsers, comma-separated; empty for none.
    #[arg(
        long,
        env = "STRANGERS_STUN",
        value_delimiter = ',',
        default_value = "stun:stun.l.google.com:19302"
    )]
    pub stun: Vec<String>,

    /// TURN relay URLs (`turn:host:3478?transport=udp`, `turns:…`), comma-separated. Needs
    /// --turn-secret. Users behind strict NATs can only connect through a relay.
    #[arg(long = "turn-url", env = "STRANGERS_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,

    /// The TURN server's shared secret (coturn `static-auth-secret`), used to sign
    /// short-lived credentials. Never printed.
    #[arg(long, env = "STRANGERS_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<Secret>,

    /// How long a TURN credential stays valid: long enough to set up a call, short enough
    /// that a leaked one is soon useless.
    #[arg(long, env = "STRANGERS_TURN_TTL", default_value = "10m", value_parser = parse_duration)]
    pub turn_ttl: Duration,

    /// Origins allowed to open the WebSocket, comma-separated (`https://example.com`).
    /// Empty: only the server's own origin (the request's Host). `*`: any origin.
    #[arg(long, env = "STRANGERS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Take the client's IP from this request header (e.g. `Fly-Client-IP`) instead of the
    /// TCP peer. Set it only behind a proxy that always sets the header itself.
    #[arg(long, env = "STRANGERS_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,

    /// Most WebSocket connections from one client IP at once.
    #[arg(long, env = "STRANGERS_MAX_PER_IP", default_value_t = 16)]
    pub max_per_ip: u32,

    /// Most connections from one client IP that have not become WebSockets (plain HTTP, or
    /// a request still arriving). A browser opens up to six at once to load a page, and a
    /// household or a campus shares one address, so this is larger than --max-per-ip.
    #[arg(long, env = "STRANGERS_MAX_PENDING_PER_IP", default_value_t = 64)]
    pub max_pending_per_ip: u32,

    /// Relayed messages (offer, answer, candidate, chat, typing) a client may send per
    /// second, sustained.
    #[arg(long, env = "STRANGERS_RELAY_RATE", default_value_t = 50)]
    pub relay_rate: u32,

    /// Relayed messages a client may send in a burst (a call's start trickles dozens of
    /// candidates at once).
    #[arg(long, env = "STRANGERS_RELAY_BURST", default_value_t = 200)]
    pub relay_burst: u32,

    /// Joins and Nexts a client may make per minute, sustained (a skip-flood is refused).
    #[arg(long, env = "STRANGERS_JOIN_RATE", default_value_t = 60)]
    pub join_rate: u32,

    /// Joins and Nexts a client may make in a burst.
    #[arg(long, env = "STRANGERS_JOIN_BURST", default_value_t = 20)]
    pub join_burst: u32,

    /// Difficulty of the proof of work every join and Next pays, in leading zero bits of
    /// SHA-256 (2^bits hashes on average; each bit doubles it). Challenges get harder, up
    /// to --pow-max-bits, for a client joining very often and when the server is busy.
    /// 0 turns the proof of work off.
    #[arg(long, env = "STRANGERS_POW_BITS", default_value_t = 18, value_parser = clap::value_parser!(u8).range(0..=26))]
    pub pow_bits: u8,

    /// The hardest a join's proof of work gets, in bits (at most 26).
    #[arg(long, env = "STRANGERS_POW_MAX_BITS", default_value_t = 24, value_parser = clap::value_parser!(u8).range(0..=26))]
    pub pow_max_bits: u8,

    /// Most WebSocket connections at once; more are refused with 503. Each costs one open
    /// file, so keep it under the process's open-files limit.
    #[arg(long, env = "STRANGERS_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// How often to ping a quiet client; one silent for two intervals is disconnected.
    #[arg(long, env = "STRANGERS_PING_INTERVAL", default_value = "20s", value_parser = parse_duration)]
    pub ping_interval: Duration,

    /// How long a write to a client that does not read may block before it is dropped.
    #[arg(long, env = "STRANGERS_WRITE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// How long a user with interests waits for someone sharing one before meeting anyone.
    #[arg(long, env = "STRANGERS_FALLBACK_AFTER", default_value = "5s", value_parser = parse_duration_or_zero)]
    pub fallback_after: Duration,

    /// How long two users who just parted are kept from meeting again (unless they are the
    /// only two waiting past the fallback wait). `0s` turns it off.
    #[arg(long, env = "STRANGERS_REMATCH_COOLDOWN", default_value = "30s", value_parser = parse_duration_or_zero)]
    pub rematch_cooldown: Duration,

    /// The append-only file of user reports (JSON lines). A `.salt` file beside it keeps
    /// the salt of the hashed client addresses, so reports and bans survive restarts.
    #[arg(
        long,
        env = "STRANGERS_REPORT_LOG",
        default_value = "strangers-reports.jsonl"
    )]
    pub report_log: std::path::PathBuf,

    /// Distinct users whose reports within --ban-window ban a client.
    #[arg(long, env = "STRANGERS_BAN_REPORTERS", default_value_t = 3)]
    pub ban_reporters: u32,

    /// The window in which reports add up.
    #[arg(long, env = "STRANGERS_BAN_WINDOW", default_value = "10m", value_parser = parse_duration)]
    pub ban_window: Duration,

    /// How long a ban lasts.
    #[arg(long, env = "STRANGERS_BAN_FOR", default_value = "1h", value_parser = parse_duration)]
    pub ban_for: Duration,

    /// "Blur until safe": the stranger's video counts as unsafe, and stays blurred, when the
    /// on-device classifier puts at least this probability on its nudity classes (Porn,
    /// Hentai and Sexy together), in (0, 1]. Lower blurs more often. It is rendered into the
    /// call page; browsers classify on their own and tell the server nothing.
    #[arg(long, env = "STRANGERS_UNSAFE_THRESHOLD", default_value = "0.5", value_parser = parse_threshold)]
    pub unsafe_threshold: f32,

    /// How long shutdown waits for sessions to say goodbye before exiting.
    #[arg(long, env = "STRANGERS_DRAIN", default_value = "5s", value_parser = parse_duration)]
    pub drain: Duration,

    /// Log format on stderr.
    #[arg(long, env = "STRANGERS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Share one pool of strangers with every instance that uses this Redis
    /// (`redis://[user:password@]host:port[/db]`). Without it, this process keeps its own
    /// queue. Never printed.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// Prefix of the shared queue's Redis keys and channels, so several deployments can
    /// share one Redis.
    #[arg(long, env = "STRANGERS_REDIS_PREFIX", default_value = "strangers")]
    pub redis_prefix: String,

    /// With a shared queue: how long an instance that stops beating (killed, cut off) still
    /// counts as alive. After it, its waiting users leave the queue and its users' partners
    /// are told `disconnected`. Instances beat every third of it.
    #[arg(long, env = "STRANGERS_INSTANCE_TTL", default_value = "3s", value_parser = parse_duration)]
    pub instance_ttl: Duration,

    /// With a shared queue: the longest a Redis call may take before it counts as failed.
    #[arg(long, env = "STRANGERS_REDIS_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub redis_timeout: Duration,

    /// How long a connection may take to send a whole request head (slow-header attacks);
    /// also the longest a kept-alive connection waits for its next request. At most 10 s
    /// is sensible.
    #[arg(long, env = "STRANGERS_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// A connection that has not upgraded, with no request in progress, is closed after
    /// sending nothing for this long.
    #[arg(long, env = "STRANGERS_IDLE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// The largest request head (request line and headers) in bytes; larger gets 431.
    #[arg(long, env = "STRANGERS_MAX_HEADER_BYTES", default_value_t = 8192)]
    pub max_header_bytes: usize,

    /// How long one WebSocket message may take to arrive, from its first byte; a client
    /// that takes longer is closed with 1008. Keep-alive pings do not extend it.
    #[arg(long, env = "STRANGERS_MESSAGE_DEADLINE", default_value = "5s", value_parser = parse_duration)]
    pub message_deadline: Duration,

    /// The public `https://` URL of the site (`https://strangers.example`): pages then send
    /// `Strict-Transport-Security`.
    #[arg(long, env = "STRANGERS_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Serve `/metrics` (and `/healthz` with its counts) on this address of its own, e.g. a
    /// private one the scraper reaches. Without it and without --metrics-token, `/metrics`
    /// is not served.
    #[arg(long, env = "STRANGERS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Serve `/metrics` (and `/healthz` with its counts) on the main address to requests
    /// with `Authorization: Bearer <token>`. Never printed.
    #[arg(long, env = "STRANGERS_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// Seed for the matchmaker's random choices (tests use it to be reproducible); by
    /// default the seed comes from the operating system.
    #[arg(long, env = "STRANGERS_SEED")]
    pub seed: Option<u64>,
}

/// How log lines are written.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

impl Config {
    /// Reads the flags and environment of this process; exits with a message on bad input.
    pub fn from_env() -> Config {
        let matches = Config::command().get_matches();
        Config::from_matches(&matches, std::env::var("PORT").ok()).unwrap_or_else(|e| e.exit())
    }

    /// Builds the configuration from parsed arguments and the `PORT` variable, if set.
    pub fn from_matches(matches: &ArgMatches, port: Option<String>) -> Result<Config, clap::Error> {
        let mut config = Config::from_arg_matches(matches)?;
        let listen_given = matches!(
            matches.value_source("listen"),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if let (Some(port), false) = (port, listen_given) {
            let port = port.trim().parse::<u16>().map_err(|_| {
                Config::command().error(
                    clap::error::ErrorKind::InvalidValue,
                    format!("PORT must be a port number, not {port:?}"),
                )
            })?;
            config.listen.set_port(port);
        }
        config.stun.retain(|url| !url.trim().is_empty());
        config.turn_urls.retain(|url| !url.trim().is_empty());
        config.allowed_origins.retain(|o| !o.trim().is_empty());
        config.check_urls()?;
        config.check_redis()?;
        config.check_numbers()?;
        Ok(config)
    }

    /// STUN, TURN, public and origin URLs have the scheme they need, and TURN comes with its
    /// secret.
    fn check_urls(&self) -> Result<(), clap::Error> {
        for url in &self.stun {
            if !(url.starts_with("stun:") || url.starts_with("stuns:")) {
                return Err(invalid(format!(
                    "--stun: {url:?} is not a stun: or stuns: URL"
                )));
            }
        }
        for url in &self.turn_urls {
            if !(url.starts_with("turn:") || url.starts_with("turns:")) {
                return Err(invalid(format!(
                    "--turn-url: {url:?} is not a turn: or turns: URL"
                )));
            }
        }
        match (self.turn_urls.is_empty(), self.turn_secret.is_none()) {
            (false, true) => return Err(invalid("--turn-url needs --turn-secret".into())),
            (true, false) => return Err(invalid("--turn-secret needs --turn-url".into())),
            _ => {}
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(invalid(format!(
                "--public-url: {url:?} is not a URL like https://strangers.example"
            )));
        }
        for origin in &self.allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(invalid(format!(
                    "--allowed-origins: {origin:?} is not an origin like https://example.com or *"
                )));
            }
        }
        Ok(())
    }

    /// The Redis URL is one the client library takes, and the key prefix is plain.
    fn check_redis(&self) -> Result<(), clap::Error> {
        if let Some(url) = &self.redis_url
            && !url.0.starts_with("redis://")
        {
            return Err(invalid(
                "--redis-url: must be a redis:// URL (TLS is not built in; on Fly.io Upstash is reached over the private network)".into(),
            ));
        }
        if let Some(url) = &self.redis_url
            && let Err(e) = redis::Client::open(url.0.as_str())
        {
            return Err(invalid(format!("--redis-url: {e}")));
        }
        if self.redis_prefix.is_empty()
            || !self
                .redis_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                "--redis-prefix: letters, digits, '-', '_' and '.' only".into(),
            ));
        }
        Ok(())
    }

    /// Limits and rates are positive, and the header cap leaves room for a real request.
    fn check_numbers(&self) -> Result<(), clap::Error> {
        if self.max_header_bytes < 1024 {
            return Err(invalid("--max-header-bytes must be at least 1024".into()));
        }
        let positive = [
            ("--max-connections", self.max_connections as u64),
            ("--max-per-ip", self.max_per_ip.into()),
            ("--max-pending-per-ip", self.max_pending_per_ip.into()),
            ("--relay-rate", self.relay_rate.into()),
            ("--relay-burst", self.relay_burst.into()),
            ("--join-rate", self.join_rate.into()),
            ("--join-burst", self.join_burst.into()),
            ("--ban-reporters", self.ban_reporters.into()),
        ];
        for (flag, value) in positive {
            if value == 0 {
                return Err(invalid(format!("{flag} must be at least 1")));
            }
        }
        Ok(())
    }

    /// Whether pages should send `Strict-Transport-Security`: the site is served over https.
    pub fn hsts(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }

    /// The STUN and TURN servers browsers are given.
    pub fn ice(&self) -> IceConfig {
        IceConfig {
            stun: self.stun.clone(),
            turn: self.turn_secret.as_ref().map(|secret| Turn {
                urls: self.turn_urls.clone(),
                secret: secret.0.clone(),
                ttl: self.turn_ttl,
            }),
        }
    }
}

/// A value that must never be printed: `Debug` shows `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Secret, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Secret(s.to_string()))
    }
}

fn invalid(message: String) -> clap::Error {
    Config::command().error(clap::error::ErrorKind::InvalidValue, message)
}

/// Parses a duration that may be zero (`0s` turns the feature off).
pub fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    let trimmed = s.trim();
    if trimmed.trim_end_matches(|c: char| c.is_ascii_alphabetic()) == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

/// The longest duration any option takes: a year. Longer ones are refused at start-up
/// rather than overflowing a deadline (an `Instant` plus a huge wait panics) later.
const MAX_DURATION_MS: u64 = 365 * 24 * 3_600_000;

/// Parses `250ms`, `20s`, `5m`, `1h` or a bare number of seconds, greater than zero and at
/// most a year.
/// A probability in (0, 1] (`--unsafe-threshold`).
pub fn parse_threshold(s: &str) -> Result<f32, String> {
    let t: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number; give a probability such as 0.5"))?;
    if t > 0.0 && t <= 1.0 {
        Ok(t)
    } else {
        Err(format!(
            "{s} is not in (0, 1]; give a probability such as 0.5"
        ))
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 20s or 5m"))?;
    let scale = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    let ms = n.checked_mul(scale).filter(|ms| *ms <= MAX_DURATION_MS);
    match ms {
        None => Err(format!("{s:?} is too long (at most 365 days)")),
        Some(0) => Err("must be greater than zero".to_string()),
        Some(ms) => Ok(Duration::from_millis(ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], port: Option<&str>) -> Result<Config, clap::Error> {
        let matches = Config::command()
            .try_get_matches_from(std::iter::once("strangers").chain(args.iter().copied()))?;
        Config::from_matches(&matches, port.map(str::to_string))
    }

    #[test]
    fn defaults_suit_a_laptop() {
        let c = parse(&[], None).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.ping_interval, Duration::from_secs(20));
        assert_eq!(c.ice().servers().len(), 1);
    }

    #[test]
    fn port_replaces_only_the_default_port() {
        assert_eq!(
            parse(&[], Some("9000")).unwrap().listen.to_string(),
            "127.0.0.1:9000"
        );
        let explicit = parse(&["--listen", "0.0.0.0:8080"], Some("9000")).unwrap();
        assert_eq!(explicit.listen.to_string(), "0.0.0.0:8080");
        let err = parse(&[], Some("http")).unwrap_err().to_string();
        assert!(err.contains("PORT"), "{err}");
    }

    #[test]
    fn bad_values_name_the_flag() {
        let err = parse(&["--ping-interval", "soon"], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--ping-interval"), "{err}");
        let err = parse(&["--stun", "http://x"], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--stun"), "{err}");
        let err = parse(&["--listen", "nowhere"], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--listen"), "{err}");
    }

    #[test]
    fn empty_stun_means_none() {
        let ice = parse(&["--stun", ""], None).unwrap().ice();
        assert!(ice.servers().is_empty());
    }

    #[test]
    fn turn_needs_urls_and_secret_and_hides_the_secret() {
        let err = parse(&["--turn-url", "turn:127.0.0.1:3478"], None).unwrap_err();
        assert!(err.to_string().contains("--turn-secret"), "{err}");
        let err = parse(&["--turn-secret", "s3cret"], None).unwrap_err();
        assert!(err.to_string().contains("--turn-url"), "{err}");
        let c = parse(
            &[
                "--turn-url",
                "turn:127.0.0.1:3478",
                "--turn-secret",
                "s3cret",
            ],
            None,
        )
        .unwrap();
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "the secret is redacted"
        );
        let servers = c.ice().servers();
        assert!(servers.iter().any(|s| s.credential.is_some()));
    }

    #[test]
    fn origins_must_be_origins() {
        assert!(parse(&["--allowed-origins", "https://a.example,*"], None).is_ok());
        let err = parse(&["--allowed-origins", "a.example"], None).unwrap_err();
        assert!(err.to_string().contains("--allowed-origins"), "{err}");
    }

    /// The "Blur until safe" threshold is a probability; anything else is refused at start-up
    /// with the flag's name.
    #[test]
    fn the_unsafe_threshold_is_a_probability() {
        assert_eq!(parse(&[], None).unwrap().unsafe_threshold, 0.5);
        let c = parse(&["--unsafe-threshold", "0.001"], None).unwrap();
        assert_eq!(c.unsafe_threshold, 0.001);
        assert_eq!(parse_threshold("1"), Ok(1.0));
        for bad in ["0", "-0.1", "1.5", "NaN", "inf", "half", ""] {
            let err = parse(&[&format!("--unsafe-threshold={bad}")], None).unwrap_err();
            assert!(
                err.to_string().contains("--unsafe-threshold"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5d").is_err());
    }

    /// Operator input that would overflow a deadline later is refused at start-up, with
    /// the flag's name.
    #[test]
    fn durations_that_would_overflow_are_refused() {
        assert!(
            parse_duration("18446744073709551615h").is_err(),
            "the multiply overflows"
        );
        assert!(parse_duration("99999999999999999999").is_err(), "not a u64");
        assert!(parse_duration("366d").is_err());
        assert_eq!(
            parse_duration("8760h"),
            Ok(Duration::from_secs(365 * 86_400))
        );
        assert!(parse_duration("8761h").is_err(), "over a year");
        for flag in [
            "--fallback-after",
            "--turn-ttl",
            "--ban-for",
            "--ping-interval",
        ] {
            let mut args = vec![flag, "9999999999999h"];
            if flag == "--turn-ttl" {
                args.extend(["--turn-url", "turn:t.example:3478", "--turn-secret", "s"]);
            }
            let e = parse(&args, None).unwrap_err().to_string();
            assert!(e.contains(flag) && e.contains("too long"), "{flag}: {e}");
        }
    }
}
