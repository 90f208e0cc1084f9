//! A cheap smoke run of the load generator, `strangers-load`, against a real server in this
//! process: hold, churn and mixed modes, small and short, checked through `--json`. No figure
//! here is a pass/fail threshold (the machine running CI is shared); only that the tool
//! opened sessions, saw matches, timed relayed messages, and met no error.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::CommandFactory;
use serde_json::Value;
use strangers::config::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running in this process on a free loopback port.
struct TestServer {
    /// Where it listens, for the generator's `--url`.
    addr: SocketAddr,
    /// Tells the server to shut down.
    stop: oneshot::Sender<()>,
    /// The server, to wait for its shutdown.
    task: JoinHandle<()>,
    /// The directory of its report log, removed after shutdown.
    dir: std::path::PathBuf,
}

impl TestServer {
    /// Starts a server with no STUN servers, a fixed seed, no re-match cooldown, an easy
    /// proof of work (the generator solves every challenge, in this debug build, and all its
    /// clients share one address, which makes challenges harder, up to 2^12) and the
    /// extra flags given, keeping its report log in a scratch directory of its own.
    async fn start(extra: &[&str]) -> TestServer {
        let dir = std::env::temp_dir().join(format!("strangers-load-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("reports.jsonl");
        let log = log.to_str().unwrap();
        let args = ["strangers", "--stun", "", "--seed", "1"]
            .into_iter()
            .chain(["--rematch-cooldown", "0s", "--report-log", log])
            .chain(["--pow-bits", "10", "--pow-max-bits", "12"])
            .chain(extra.iter().copied());
        let matches = Config::command()
            .try_get_matches_from(args)
            .expect("test flags are valid");
        let config = Config::from_matches(&matches, None).expect("test config is valid");
        let listener = strangers::server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(strangers::server::run(listener, config, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop,
            task,
            dir,
        }
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Signals shutdown and waits (bounded) for the server to stop.
    async fn shutdown(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("server stops within its drain time")
            .unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Server flags for a load run: the abuse limits (per-IP cap, message and join rates) are
/// lifted, since one client here does in a second what a person does in an hour. (The
/// server is already started without the re-match cooldown, without which 20 clients would
/// run out of strangers they have not met within a second.)
const UNLIMITED: &[&str] = &[
    "--max-per-ip",
    "10000",
    "--max-pending-per-ip",
    "10000",
    "--relay-rate",
    "1000000",
    "--relay-burst",
    "1000000",
    "--join-rate",
    "100000000",
    "--join-burst",
    "1000000",
];

/// Runs the built `strangers-load` with `args` (bounded in time) and returns its exit
/// status, its JSON report and its stderr.
async fn load(args: Vec<String>) -> (Option<i32>, Value, String) {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strangers-load"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strangers-load starts");
        let started = Instant::now();
        while child.try_wait().expect("can poll the child").is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("strangers-load output");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "--json printed no JSON ({e}): {}\nstderr:\n{stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (out.status.code(), json, stderr)
    })
    .await
    .expect("the runner thread")
}

fn args(server: &TestServer, rest: &[&str]) -> Vec<String> {
    ["--url", &server.ws_url(), "--json", "--quiet"]
        .iter()
        .chain(rest)
        .map(|s| s.to_string())
        .collect()
}

fn no_errors(report: &Value, stderr: &str) {
    assert_eq!(
        report["errors"]["total"], 0,
        "errors: {}\nstderr:\n{stderr}",
        report["errors"]
    );
}

fn churned(churn: &Value, clients: u64) {
    assert_eq!(churn["opened"], clients, "{churn}");
    assert!(churn["matches"].as_u64().unwrap() > 0, "{churn}");
    assert!(churn["exchanges"].as_u64().unwrap() > 0, "{churn}");
    assert!(churn["relay_received"].as_u64().unwrap() > 0, "{churn}");
    let latency = &churn["latency"];
    assert!(latency["samples"].as_u64().unwrap() > 0, "{churn}");
    assert!(latency["p99_us"].as_f64().unwrap() >= latency["p50_us"].as_f64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_churn_and_mixed_runs_report_clean_figures() {
    let server = TestServer::start(UNLIMITED).await;
    let pid = std::process::id().to_string();

    // Hold: 50 idle sessions, then one 6 KB offer/answer through each pair.
    let (code, report, stderr) = load(args(
        &server,
        &[
            "--duration",
            "1s",
            "--server-pid",
            &pid,
            "hold",
            "--sessions",
            "50",
            "--payload-bytes",
            "6000",
            "--settle",
            "100ms",
        ],
    ))
    .await;
    no_errors(&report, &stderr);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["mode"], "hold");
    let hold = &report["hold"];
    assert_eq!(hold["opened"], 50, "{hold}");
    assert_eq!(
        hold["exchanged"], 50,
        "every session sent and got 6 KB: {hold}"
    );
    assert!(hold["setup_per_s"].as_f64().unwrap() > 0.0);
    assert!(hold["memory"]["idle_kib"].as_u64().is_some(), "{hold}");

    // Churn: 20 clients for 2 s, unpaced.
    let (code, report, stderr) = load(args(
        &server,
        &[
            "--duration",
            "2s",
            "churn",
            "--clients",
            "20",
            "--timeout",
            "1s",
        ],
    ))
    .await;
    no_errors(&report, &stderr);
    assert_eq!(code, Some(0), "{stderr}");
    churned(&report["churn"], 20);

    // Mixed: 50 idle sessions held while 20 clients churn at a paced 2,000 messages/s.
    let (code, report, stderr) = load(args(
        &server,
        &[
            "--duration",
            "2s",
            "mixed",
            "--sessions",
            "50",
            "--clients",
            "20",
            "--rate",
            "2000",
            "--timeout",
            "1s",
            "--settle",
            "100ms",
        ],
    ))
    .await;
    no_errors(&report, &stderr);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["hold"]["opened"], 50);
    assert_eq!(report["churn"]["rate_target"], 2000.0);
    churned(&report["churn"], 20);

    server.shutdown().await;
}

#[tokio::test]
async fn refuses_a_server_off_loopback() {
    // 192.0.2.0/24 is TEST-NET-1; the tool refuses before sending anything.
    let out = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_strangers-load"))
            .args(["--url", "ws://192.0.2.1:8080/ws", "hold", "--sessions", "1"])
            .stdin(Stdio::null())
            .output()
            .expect("strangers-load runs")
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}
