//! The server's configuration: command-line flags, each with an environment-variable fallback.
//!
//! `strangers --help` documents every option. Invalid values fail at start-up with a message
//! that names the flag.

use std::net::SocketAddr;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};

use crate::protocol::IceServer;

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

    /// Events that may queue for one client before it counts as not keeping up.
    #[arg(long, env = "STRANGERS_QUEUE", default_value_t = 64, value_parser = clap::value_parser!(u16).range(4..))]
    pub queue: u16,

    /// How long shutdown waits for sessions to say goodbye before exiting.
    #[arg(long, env = "STRANGERS_DRAIN", default_value = "5s", value_parser = parse_duration)]
    pub drain: Duration,

    /// Log format on stderr.
    #[arg(long, env = "STRANGERS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

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
        for url in &config.stun {
            if !(url.starts_with("stun:") || url.starts_with("stuns:")) {
                return Err(Config::command().error(
                    clap::error::ErrorKind::InvalidValue,
                    format!("--stun: {url:?} is not a stun: or stuns: URL"),
                ));
            }
        }
        if config.max_connections == 0 {
            return Err(Config::command().error(
                clap::error::ErrorKind::InvalidValue,
                "--max-connections must be at least 1",
            ));
        }
        Ok(config)
    }

    /// The ICE servers every browser is given.
    pub fn ice_servers(&self) -> Vec<IceServer> {
        if self.stun.is_empty() {
            return Vec::new();
        }
        vec![IceServer {
            urls: self.stun.clone(),
            username: None,
            credential: None,
        }]
    }
}

/// Parses `250ms`, `20s`, `5m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 20s or 5m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{s:?}: unknown unit {unit:?} (use ms, s or m)")),
    }
    .and_then(|d| {
        if d.is_zero() {
            Err("must be greater than zero".to_string())
        } else {
            Ok(d)
        }
    })
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
        assert_eq!(c.ice_servers().len(), 1);
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
        assert!(
            parse(&["--stun", ""], None)
                .unwrap()
                .ice_servers()
                .is_empty()
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
    }
}
