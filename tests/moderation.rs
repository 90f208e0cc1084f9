//! Reports and bans as users live them: a reported stranger just sees a skip; several
//! different people reporting the same client get it a temporary ban that survives a
//! restart; reporters and bystanders are unaffected.

mod common;

use common::{Client, TestServer, scratch_file};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The test stands in for a trusted proxy that says where each client comes from.
const IP_HEADER: &str = "x-test-client-ip";

async fn client_from(server: &TestServer, ip: &str) -> Client {
    connect_from(server, ip).await.0
}

/// A client at `ip` that has read its `welcome`, and that `welcome`.
async fn connect_from(server: &TestServer, ip: &str) -> (Client, serde_json::Value) {
    server.client_from(IP_HEADER, ip).await
}

async fn start(log: &std::path::Path) -> TestServer {
    TestServer::start_with_report_log(&["--client-ip-header", IP_HEADER], log).await
}

/// Pairs `a` and `b` (both idle, nobody else waiting); returns the room.
async fn meet(a: &mut Client, b: &mut Client) -> String {
    a.join().await;
    b.join().await;
    let room = a.recv_type("matched").await["room"]
        .as_str()
        .unwrap()
        .to_string();
    b.recv_type("matched").await;
    room
}

#[tokio::test]
async fn three_reporters_ban_a_client_even_across_a_restart() {
    let log = scratch_file("reports.jsonl");
    let server = start(&log).await;
    let mut troll = client_from(&server, "203.0.113.9").await;
    for n in 1..=3 {
        let mut reporter = client_from(&server, &format!("198.51.100.{n}")).await;
        let room = meet(&mut troll, &mut reporter).await;
        reporter
            .send(json!({"type": "report", "room": room, "reason": "harassment"}))
            .await;
        // The reported user sees an ordinary skip, never who reported them.
        assert_eq!(
            troll.recv_type("left").await,
            json!({"type": "left", "room": room, "reason": "skipped"})
        );
        // The reporter is idle and can go on.
        reporter.join().await;
        reporter.send(json!({"type": "leave"})).await;
    }

    // An early offer sent at once, while its session still takes it to be waiting, is
    // dropped with the refused wait.
    troll.send(json!({"type": "join"})).await;
    troll
        .send(json!({"type": "early_offer", "sdp": "v=0 banned"}))
        .await;
    troll.recv_type("waiting").await;
    let banned = troll.recv_type("error").await;
    assert_eq!(banned["code"], "banned");
    let retry = banned["retry_after"].as_u64().unwrap();
    assert!((3500..=3600).contains(&retry), "about an hour: {retry}");
    assert_eq!(
        server.health().await["waiting"],
        0,
        "the banned user is not queued"
    );

    // Someone else at another address is matched as usual, and gets nothing of the
    // banned user's offer.
    let mut a = client_from(&server, "192.0.2.1").await;
    let mut b = client_from(&server, "192.0.2.2").await;
    a.join_ahead().await;
    b.join_ahead().await;
    for m in [a.recv_type("matched").await, b.recv_type("matched").await] {
        assert!(
            m.get("offer").is_none() && m.get("offered").is_none(),
            "{m}"
        );
    }
    a.send(json!({"type": "leave"})).await;
    server.shutdown().await;

    // The store is a file: after a restart the ban still holds.
    let server = start(&log).await;
    let mut troll = client_from(&server, "203.0.113.9").await;
    troll.send(json!({"type": "join"})).await;
    troll.recv_type("waiting").await;
    assert_eq!(troll.recv_type("error").await["code"], "banned");
    let stored = std::fs::read_to_string(&log).unwrap();
    assert_eq!(stored.lines().count(), 3, "three reports stored");
    assert!(!stored.contains("203.0.113.9"), "no raw address is stored");
}

/// Reports from one person, however many, and reports of oneself, ban nobody.
#[tokio::test]
async fn one_reporter_cannot_ban_anyone() {
    let log = scratch_file("reports.jsonl");
    let server = start(&log).await;
    let mut target = client_from(&server, "203.0.113.50").await;
    let mut reporter = client_from(&server, "198.51.100.50").await;
    for _ in 0..4 {
        let room = meet(&mut target, &mut reporter).await;
        reporter
            .send(json!({"type": "report", "room": room, "reason": "spam"}))
            .await;
        target.recv_type("left").await;
    }
    target.join().await;
    reporter.join().await;
    target.recv_type("matched").await;
}

/// A report naming a room the reporter is not in does nothing.
#[tokio::test]
async fn a_report_for_another_room_is_ignored() {
    let log = scratch_file("reports.jsonl");
    let server = start(&log).await;
    let mut a = client_from(&server, "192.0.2.10").await;
    let mut b = client_from(&server, "192.0.2.11").await;
    let room = meet(&mut a, &mut b).await;
    a.send(json!({"type": "report", "room": "0".repeat(32), "reason": "other"}))
        .await;
    a.send(json!({"type": "chat", "room": room, "text": "still here"}))
        .await;
    assert_eq!(b.recv().await["text"], "still here");
}

async fn client_at(addr: std::net::SocketAddr, ip: &str) -> Client {
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut().insert(IP_HEADER, ip.parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut client = Client::new(ws);
    client.recv_type("welcome").await;
    client
}

/// With several instances sharing Redis, reports are stored there: three people on
/// instance 1 report a troll on instance 2, and the troll is banned on both, and on an
/// instance started afterwards (the store outlives any one process). Redis holds no raw
/// address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_in_redis_ban_on_every_instance_and_outlive_them() {
    let redis = common::redis::RedisServer::start();
    let prefix = common::redis::fresh_prefix();
    let flags = ["--client-ip-header", IP_HEADER];
    let one = TestServer::start_in_pool(&flags, &redis.url(), &prefix).await;
    let two = TestServer::start_in_pool(&flags, &redis.url(), &prefix).await;
    let mut troll = client_at(two.addr, "203.0.113.77").await;
    for n in 1..=3 {
        let mut reporter = client_at(one.addr, &format!("198.51.100.{}", 70 + n)).await;
        troll.join().await;
        common::wait_waiting(two.addr, 1, "the troll waits").await;
        reporter.join().await;
        let room = reporter.recv_type("matched").await["room"].clone();
        troll.recv_type("matched").await;
        reporter
            .send(json!({"type": "report", "room": room, "reason": "nudity"}))
            .await;
        assert_eq!(
            troll.recv_type("left").await,
            json!({"type": "left", "room": room, "reason": "skipped"})
        );
    }
    // Banned where the reports were made, where the troll is, and on a new instance.
    let three = TestServer::start_in_pool(&flags, &redis.url(), &prefix).await;
    for addr in [two.addr, one.addr, three.addr] {
        let mut again = client_at(addr, "203.0.113.77").await;
        // The report reaches the other instances over pub/sub: ask until it has (bounded).
        let mut banned = false;
        for _ in 0..40 {
            again.send(json!({"type": "join"})).await;
            again.recv_type("waiting").await;
            match tokio::time::timeout(std::time::Duration::from_millis(100), again.recv()).await {
                Ok(msg) if msg["code"] == "banned" => {
                    banned = true;
                    break;
                }
                Ok(other) => panic!("unexpected {other}"),
                Err(_) => again.send(json!({"type": "leave"})).await,
            }
        }
        assert!(banned, "banned on the instance at {addr}");
    }
    let stored = redis.command(&format!("LRANGE {{{prefix}}}:reports 0 -1"));
    assert_eq!(stored.matches("nudity").count(), 3, "{stored}");
    assert!(!stored.contains("203.0.113.77"), "no raw address in redis");
}

/// A banned client is given no TURN credentials (it will meet nobody, so our relay is not
/// its to use); everyone else gets them in `welcome`, and fresh ones in each `matched`.
#[tokio::test]
async fn a_banned_client_gets_no_relay_credentials() {
    let log = scratch_file("reports.jsonl");
    let turn = [
        "--client-ip-header",
        IP_HEADER,
        "--turn-url",
        "turn:127.0.0.1:3478",
        "--turn-secret",
        "s3cret",
    ];
    let server = TestServer::start_with_report_log(&turn, &log).await;
    let turn_in = |welcome: &serde_json::Value| {
        welcome["iceServers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["credential"].is_string())
    };
    let mut troll = client_from(&server, "203.0.113.77").await;
    for n in 1..=3 {
        let mut reporter = client_from(&server, &format!("198.51.100.7{n}")).await;
        reporter.join().await;
        troll.join().await;
        let matched = reporter.recv_type("matched").await;
        assert!(turn_in(&matched), "matched brings relay credentials");
        let room = troll.recv_type("matched").await["room"].clone();
        reporter
            .send(json!({"type": "report", "room": room, "reason": "spam"}))
            .await;
        troll.recv_type("left").await;
    }
    let (welcome, banned) = welcome_from(&server, "203.0.113.77").await;
    assert!(!turn_in(&banned), "no relay for the banned: {banned}");
    assert!(turn_in(&welcome), "the others' welcome has it: {welcome}");
}

/// The `welcome` of a client at 192.0.2.200 and of one at `ip`.
async fn welcome_from(server: &TestServer, ip: &str) -> (serde_json::Value, serde_json::Value) {
    let (_, other) = connect_from(server, "192.0.2.200").await;
    let (_, banned) = connect_from(server, ip).await;
    (other, banned)
}

/// A store of 40,000 reports against one client (from two people, never enough for a ban)
/// is replayed whole: the server starts on it and every report is kept. (How
/// long the replay takes, by store size, is `cargo bench --bench report_store`.)
#[tokio::test]
async fn a_large_store_is_replayed_whole() {
    let log = scratch_file("reports.jsonl");
    let now = strangers::ids::now_ms();
    let mut lines = String::new();
    for n in 0..40_000u64 {
        let by = if n % 2 == 0 { "aa" } else { "bb" };
        lines.push_str(&format!(
            "{{\"at_ms\":{},\"reporter\":\"{}\",\"reported\":\"{}\",\"reason\":\"spam\"}}\n",
            now - 40_000 + n,
            by.repeat(16),
            "cc".repeat(16)
        ));
    }
    std::fs::write(&log, lines).unwrap();
    let server = start(&log).await;
    let health = server.health().await;
    assert_eq!(health["status"], "ok");
    let kept = std::fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(
        kept, 40_000,
        "recent reports are all kept (repeats filtered on arrival)"
    );
}

/// Reports of oneself and repeats of one's own report are not stored: only reports that
/// count reach the store.
#[tokio::test]
async fn self_reports_and_repeats_are_not_stored() {
    let log = scratch_file("reports.jsonl");
    let server = start(&log).await;
    let mut target = client_from(&server, "203.0.113.60").await;
    let mut reporter = client_from(&server, "198.51.100.60").await;
    for _ in 0..4 {
        let room = meet(&mut target, &mut reporter).await;
        reporter
            .send(json!({"type": "report", "room": room, "reason": "spam"}))
            .await;
        target.recv_type("left").await;
    }
    // Two tabs behind one address report each other.
    let mut twin_a = client_from(&server, "192.0.2.70").await;
    let mut twin_b = client_from(&server, "192.0.2.70").await;
    let room = meet(&mut twin_a, &mut twin_b).await;
    twin_a
        .send(json!({"type": "report", "room": room, "reason": "spam"}))
        .await;
    twin_b.recv_type("left").await;
    // A report that counts, as a marker: the store is written in order.
    let mut other = client_from(&server, "198.51.100.61").await;
    let room = meet(&mut target, &mut other).await;
    other
        .send(json!({"type": "report", "room": room, "reason": "spam"}))
        .await;
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    let stored = loop {
        let stored = std::fs::read_to_string(&log).unwrap_or_default();
        if stored.lines().count() >= 2 || tokio::time::Instant::now() > deadline {
            break stored;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        stored.lines().count(),
        2,
        "one report per reporter and target, none of oneself:\n{stored}"
    );
}
