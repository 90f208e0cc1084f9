//! The command line: global flags, the modes and their flags, and the checks clap cannot make.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use strangers::config::{parse_duration, parse_duration_or_zero};

use crate::churn;

/// Longest run allowed (`--duration`).
const MAX_DURATION: Duration = Duration::from_secs(600);

/// Load generator for the strangers signaling server (loopback only by default).
#[derive(Parser, Debug)]
#[command(
    name = "strangers-load",
    version,
    about = "Load generator for the strangers signaling server: idle sessions, match churn, \
             relay latency (loopback servers only unless --allow-remote)"
)]
pub struct Cli {
    /// The server's WebSocket URL; several, comma-separated (instances sharing one queue),
    /// spread the clients over them round-robin.
    #[arg(
        long,
        env = "STRANGERS_LOAD_URL",
        default_value = "ws://127.0.0.1:8080/ws",
        global = true
    )]
    pub url: String,

    /// How long to run: churn and mixed measure for this long; hold keeps the sessions open
    /// this long after setting them up. At most 10m.
    #[arg(long, default_value = "10s", value_parser = parse_duration, global = true)]
    pub duration: Duration,

    /// Print the result as one JSON object on stdout (the table goes to stderr).
    #[arg(long, global = true)]
    pub json: bool,

    /// No progress lines on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// Allow a server that is not on loopback (127.0.0.0/8, ::1). Only for servers you run.
    #[arg(long, global = true)]
    pub allow_remote: bool,

    /// The server's process id, to read its resident memory (VmRSS) from /proc.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,

    /// Spread client sockets over N source addresses 127.0.0.1, 127.0.0.2, ... (past .254 it
    /// goes on with 127.0.1.1), so the ephemeral port range never runs out and a server's
    /// per-IP cap sees many clients; IPv4 loopback only; 0 lets the kernel choose.
    #[arg(long, default_value_t = 16, global = true)]
    pub source_addrs: u16,

    /// Connections being set up at once.
    #[arg(long, default_value_t = 256, global = true)]
    pub connect_concurrency: usize,

    /// Time allowed for one connection's TCP connect, handshake and welcome.
    #[arg(long, default_value = "30s", value_parser = parse_duration, global = true)]
    pub connect_timeout: Duration,

    /// Worker threads of the generator's runtime (default: one per core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,

    /// What to run.
    #[command(subcommand)]
    pub mode: Mode,
}

/// The modes, each a subcommand with flags of its own.
#[derive(Subcommand, Debug)]
pub enum Mode {
    /// Open N sessions and keep them idle; report setup rate and server memory.
    Hold(HoldArgs),
    /// C clients join, match, signal and press Next in a loop; report matches/s and latency.
    Churn(ChurnArgs),
    /// Hold N idle sessions while C churn clients run.
    Mixed {
        /// The idle sessions held throughout.
        #[command(flatten)]
        hold: HoldArgs,
        /// The clients that churn while they are held.
        #[command(flatten)]
        churn: ChurnArgs,
    },
    /// Time a server command from spawn until it accepts TCP connections at --url.
    Startup {
        /// How many times to start it.
        #[arg(long, default_value_t = 10)]
        runs: u32,
        /// The server command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// F flooders send chat as fast as the server lets them; report what got through.
    Flood(FloodArgs),
}

/// Flags of flood mode.
#[derive(Args, Debug, Clone)]
pub struct FloodArgs {
    /// Concurrent flooders (paired with each other).
    #[arg(long, short = 'f', default_value_t = 8)]
    pub flooders: usize,

    /// Characters of each chat message's text.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub text_bytes: u32,
}

/// Flags of hold mode (and of the held sessions in mixed mode).
#[derive(Args, Debug, Clone)]
pub struct HoldArgs {
    /// Idle sessions to open.
    #[arg(long, short = 'n', default_value_t = 1000)]
    pub sessions: usize,

    /// After setup, pair every session and exchange one offer/answer of this many bytes
    /// (1–32768), then read the server's memory again.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=32768))]
    pub payload_bytes: Option<u32>,

    /// Pause after each phase before reading the server's memory.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub settle: Duration,
}

/// Flags of churn mode (and of the churn clients in mixed mode).
#[derive(Args, Debug, Clone)]
pub struct ChurnArgs {
    /// Concurrent churn clients.
    #[arg(long, short = 'c', default_value_t = 100)]
    pub clients: usize,

    /// Target relayed messages per second across all churn clients (default: unpaced).
    #[arg(long)]
    pub rate: Option<f64>,

    /// Bytes of the offer's and the answer's SDP.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(16..=32768))]
    pub sdp_bytes: u32,

    /// ICE candidates each side sends per cycle.
    #[arg(long, default_value_t = 4)]
    pub candidates: u8,

    /// A client waiting longer than this for a match or its partner counts a timeout (and
    /// presses Next); one still waiting half this long when the run ends counts as stalled.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Leave the first part of the run out of the figures (the start-up burst).
    #[arg(long, default_value = "0s", value_parser = parse_duration_or_zero)]
    pub warmup: Duration,
}

impl Cli {
    /// Checks what clap cannot: the bound on `--duration` and a usable
    /// `--connect-concurrency`. The error is the line to print.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.duration > MAX_DURATION {
            return Err("error: --duration is at most 10m");
        }
        if self.connect_concurrency == 0 {
            return Err("error: --connect-concurrency must be at least 1");
        }
        Ok(())
    }

    /// Worker threads for the generator's runtime: `--threads`, or one per core.
    pub fn worker_threads(&self) -> usize {
        let threads = self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        threads.max(1)
    }
}

impl Mode {
    /// The mode's name in the report.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Hold(_) => "hold",
            Mode::Churn(_) => "churn",
            Mode::Mixed { .. } => "mixed",
            Mode::Startup { .. } => "startup",
            Mode::Flood(_) => "flood",
        }
    }

    /// Sockets the mode keeps open at once.
    pub fn sockets(&self) -> usize {
        match self {
            Mode::Hold(h) => h.sessions,
            Mode::Churn(c) => c.clients,
            Mode::Mixed { hold, churn } => hold.sessions + churn.clients,
            Mode::Startup { .. } => 0,
            Mode::Flood(f) => f.flooders,
        }
    }
}

impl ChurnArgs {
    /// What each churn client does per cycle, from these flags.
    pub fn config(&self) -> churn::Config {
        churn::Config {
            sdp_bytes: self.sdp_bytes as usize,
            candidates: self.candidates,
            timeout: self.timeout,
            rate: self.rate.filter(|r| *r > 0.0),
        }
    }
}
