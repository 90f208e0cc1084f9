//! The gate in front of the queue, as a client sees it: challenges get harder for a
//! network whose clients join very often (and only for it), an old page that knows nothing
//! of the gate is told what to do, and with `--pow-bits 0` only the 18+ confirmation is
//! asked. The refusals themselves, on both queues, are in the signaling suite.

mod common;

use common::{Client, TestServer};
use serde_json::{Value, json};

/// The test stands in for a trusted proxy that says where each client comes from.
const IP_HEADER: &str = "x-test-client-ip";

/// A client at `ip`, and its welcome.
async fn client_from(server: &TestServer, ip: &str) -> (Client, Value) {
    server.client_from(IP_HEADER, ip).await
}

/// A network that joins far more often than a person pressing Next gets harder challenges,
/// on the connection that joins and on a new one from the same network; another network
/// still gets the base difficulty.
#[tokio::test]
async fn challenges_get_harder_for_a_network_that_joins_very_often() {
    let server = TestServer::start(&[
        "--client-ip-header",
        IP_HEADER,
        "--pow-bits",
        "4",
        "--pow-max-bits",
        "12",
        "--join-rate",
        "100000",
        "--join-burst",
        "100000",
    ])
    .await;
    let (mut bot, welcome) = client_from(&server, "203.0.113.7").await;
    assert_eq!(welcome["challenge"]["bits"], 4);
    // 150 joins as fast as the server answers: several times the 30 a minute a person
    // pressing Next makes (even if this took a minute).
    for _ in 0..150 {
        bot.join().await;
        bot.send(json!({"type": "leave"})).await;
    }
    let raised = bot.fresh_challenge().await.unwrap().bits;
    assert!(raised > 4, "the bot's challenges got harder: {raised} bits");
    let (_, again) = client_from(&server, "203.0.113.7").await;
    assert!(
        again["challenge"]["bits"].as_u64().unwrap() > 4,
        "a new socket from that network too: {again}"
    );
    let (_, other) = client_from(&server, "198.51.100.1").await;
    assert_eq!(
        other["challenge"]["bits"], 4,
        "another network pays the base"
    );
}

/// A page loaded before the gate existed sends a bare `join`: it is refused, meets nobody,
/// and the message (which an old page shows as it is) says to reload. Its `resume` after a
/// restart needs no proof of work (the signaling suite's resume tests send none).
#[tokio::test]
async fn an_old_page_is_told_to_reload() {
    let server = TestServer::start(&[]).await;
    let mut other = server.client().await;
    other.join().await;
    let mut old = server.client().await;
    old.send_as_is(json!({"type": "join", "interests": ["chess"]}))
        .await;
    let refused = old.recv_type("error").await;
    assert_eq!(refused["code"], "adult_required");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("reload the page"),
        "{refused}"
    );
    assert_eq!(server.health().await["rooms"], 0);
}

/// With the proof of work off, the welcome sets no challenge and a join needs only the
/// confirmation; without it, it is still refused.
#[tokio::test]
async fn with_the_proof_of_work_off_only_the_confirmation_is_asked() {
    let server = TestServer::start(&["--pow-bits", "0"]).await;
    let (mut a, welcome) = server.client_with_welcome().await;
    assert!(welcome.get("challenge").is_none(), "{welcome}");
    a.send_as_is(json!({"type": "join"})).await;
    assert_eq!(a.recv_type("error").await["code"], "adult_required");
    a.send_as_is(json!({"type": "join", "adult": true})).await;
    a.recv_type("waiting").await;
    let mut b = server.client().await;
    b.send_as_is(json!({"type": "join", "adult": true})).await;
    b.recv_type("waiting").await;
    assert_eq!(
        a.recv_type("matched").await["room"],
        b.recv_type("matched").await["room"]
    );
}
