//! Several instances, one pool of strangers: servers sharing a real `redis-server` (started
//! here, on a free loopback port) behave as one. Users on different instances meet, talk and
//! part; a burst of joins on three instances pairs everyone exactly once; the online count is
//! everyone's; an instance killed with SIGKILL leaves no ghosts; a Redis restart is
//! survived without restarting anything.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::process::Process;
use common::redis::{RedisServer, fresh_prefix};
use common::{Client, PATIENCE, TestServer, http_get, wait_waiting};
use futures_util::future::join_all;
use serde_json::{Value, json};

/// Short heartbeats (every 667 ms), so dead instances are noticed within about 2.7 s; not
/// shorter, as a debug build under a loaded test run can stall for a second.
const TTL: &str = "2s";
/// Every test client comes from 127.0.0.1: lift the per-IP cap.
const FLAGS: [&str; 4] = ["--instance-ttl", TTL, "--max-per-ip", "1000"];

/// Runs the tests of this file one at a time: each starts several servers, a Redis and
/// dozens of clients, and two cores running all of that for eight tests at once starve the
/// heartbeats (an instance that misses its 2 s ttl is, rightly, presumed dead).
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

async fn pool(redis: &RedisServer, n: usize) -> Vec<TestServer> {
    let prefix = fresh_prefix();
    let mut servers = Vec::new();
    for _ in 0..n {
        servers.push(TestServer::start_in_pool(&FLAGS, &redis.url(), &prefix).await);
    }
    servers
}

/// Reads messages until one of type `ty` arrives (skipping `online`), within `within`.
async fn recv_within(client: &mut Client, ty: &str, within: Duration) -> Value {
    tokio::time::timeout(within, async {
        loop {
            let msg = client.recv().await;
            if msg["type"] == ty {
                return msg;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {ty} within {within:?}"))
}

/// A user on instance 1 and a user on instance 2 meet, in opposite roles; everything they
/// relay arrives, in order; Next tells the other `skipped` and both can meet again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_two_instances_meet_talk_and_part() {
    let _serial = one_at_a_time().await;
    let redis = RedisServer::start();
    let servers = pool(&redis, 2).await;
    let mut a = servers[0].client().await;
    let mut b = servers[1].client().await;
    a.join().await;
    wait_waiting(servers[0].addr, 1, "a waits on instance 1").await;
    b.join().await;
    let ma = a.recv_type("matched").await;
    let mb = b.recv_type("matched").await;
    assert_eq!(ma["room"], mb["room"], "one room across instances");
    assert_ne!(ma["role"], mb["role"], "one offerer, one answerer");
    let room = ma["room"].as_str().unwrap().to_string();

    // Every kind of relayed message, both ways, in the order sent.
    let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n";
    let from_a = [
        json!({"type": "offer", "room": room, "sdp": sdp}),
        json!({"type": "candidate", "room": room, "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}}),
        json!({"type": "typing", "room": room, "active": true}),
        json!({"type": "media", "room": room, "video": false, "audio": true}),
    ];
    for msg in &from_a {
        a.send(msg.clone()).await;
    }
    for i in 0..50 {
        a.send(json!({"type": "chat", "room": room, "text": format!("a{i}")}))
            .await;
    }
    b.send(json!({"type": "answer", "room": room, "sdp": sdp}))
        .await;
    for msg in &from_a {
        let got = b.recv().await;
        assert_eq!(got["type"], msg["type"], "{got}");
    }
    for i in 0..50 {
        assert_eq!(b.recv().await["text"], format!("a{i}"), "chat in order");
    }
    assert_eq!(a.recv().await["type"], "answer");

    // Next on instance 2: the user on instance 1 is told, and both meet again.
    b.send(json!({"type": "next"})).await;
    b.recv_type("waiting").await;
    let left = a.recv_type("left").await;
    assert_eq!(
        left,
        json!({"type": "left", "room": room, "reason": "skipped"})
    );
    a.join().await;
    let again = a.recv_type("matched").await;
    assert_eq!(b.recv_type("matched").await["room"], again["room"]);
    assert_ne!(again["room"], json!(room), "a new room");
}

/// Ninety users join at once, thirty on each of three instances: every one is matched
/// exactly once, each room has exactly two members who can talk, and no one is left over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_joins_on_three_instances_pairs_everyone_once() {
    let _serial = one_at_a_time().await;
    let redis = RedisServer::start();
    let servers = pool(&redis, 3).await;
    let mut clients = Vec::new();
    for i in 0..90 {
        clients.push(servers[i % 3].client().await);
    }
    let matched = join_all(clients.iter_mut().map(|c| async move {
        c.join().await;
        recv_within(c, "matched", PATIENCE).await
    }))
    .await;
    let mut rooms: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, m) in matched.iter().enumerate() {
        rooms
            .entry(m["room"].as_str().unwrap().to_string())
            .or_default()
            .push(i);
    }
    assert_eq!(rooms.len(), 45, "45 rooms for 90 users");
    for (room, members) in &rooms {
        assert_eq!(members.len(), 2, "room {room} has members {members:?}");
        let (x, y) = (members[0], members[1]);
        assert_ne!(matched[x]["role"], matched[y]["role"]);
        clients[x]
            .send(json!({"type": "chat", "room": room, "text": format!("from {x}")}))
            .await;
        assert_eq!(clients[y].recv().await["text"], format!("from {x}"));
    }
    for server in &servers {
        let health = server.health().await;
        assert_eq!(health["waiting"], 0, "nobody left waiting: {health}");
        assert_eq!(health["queue"], "shared");
        assert_eq!(health["redis"], "ok");
    }
    // Nobody was matched a second time.
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.try_recv_now().await, None, "client {i}");
    }
}

/// The online count every user sees is the whole pool's, not their instance's, and so is
/// what it says of each mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_online_count_is_everyones() {
    let _serial = one_at_a_time().await;
    let redis = RedisServer::start();
    let servers = pool(&redis, 3).await;
    let mut clients = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        for _ in 0..=i {
            let mut client = server.client().await;
            // Instance 1's user stays on the landing page's side (no Start); instance 2's
            // two chat by text, instance 3's three by video.
            let mode = ["", "text", "video"][i];
            if !mode.is_empty() {
                client.send(json!({"type": "join", "mode": mode})).await;
            }
            clients.push(client);
        }
    }
    // 1 + 2 + 3 users; the count follows within a few heartbeats.
    let first = &mut clients[0];
    let count = tokio::time::timeout(PATIENCE, async {
        loop {
            let msg = first.recv_any().await;
            if msg["type"] == "online"
                && msg["count"] == 6
                && msg["modes"]["text"] == 2
                && msg["modes"]["video"] == 3
            {
                return msg;
            }
        }
    })
    .await;
    assert!(
        count.is_ok(),
        "the user on instance 1 never saw 6 online, 3 on video and 2 on text"
    );
}

/// A `strangers` process of the pool, for the test that kills one.
async fn spawn(redis: &str, prefix: &str) -> Process {
    let flags = ["--redis-url", redis, "--redis-prefix", prefix];
    let more = ["--instance-ttl", TTL, "--rematch-cooldown", "0s"];
    Process::start("127.0.0.1:0", &[&flags[..], &more[..]].concat()).await
}

/// An instance killed with SIGKILL (no goodbye) leaves no ghosts: its users' partners on
/// other instances are told `disconnected` once its heartbeat lapses (ttl 2 s, beats every
/// 667 ms: told within about 2.7 s; the test allows 5 s), and its waiting users leave
/// the queue, so newcomers meet each other, not a ghost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_leaves_no_ghosts() {
    let _serial = one_at_a_time().await;
    let redis = RedisServer::start();
    let prefix = fresh_prefix();
    let mut doomed = spawn(&redis.url(), &prefix).await;
    let survivor = spawn(&redis.url(), &prefix).await;

    let mut a = doomed.client().await;
    let mut b = survivor.client().await;
    a.join().await;
    wait_waiting(doomed.addr, 1, "a waits").await;
    b.join().await;
    let room = b.recv_type("matched").await["room"].clone();
    a.recv_type("matched").await;
    // c waits on the doomed instance.
    let mut c = doomed.client().await;
    c.join().await;
    wait_waiting(doomed.addr, 1, "c waits").await;

    doomed.child.kill().await.unwrap();
    let left = recv_within(&mut b, "left", PATIENCE).await;
    assert_eq!(
        left,
        json!({"type": "left", "room": room, "reason": "disconnected"})
    );

    // Two newcomers on the survivor meet each other: c's place in the queue is gone.
    let mut d = survivor.client().await;
    let mut e = survivor.client().await;
    d.join().await;
    e.join().await;
    let md = d.recv_type("matched").await;
    let me = e.recv_type("matched").await;
    assert_eq!(md["room"], me["room"], "the newcomers met each other");
    drop((a, c));
}

/// Redis goes away and comes back empty. Meanwhile both instances keep their users
/// connected and say `redis: unreachable` on /healthz; afterwards they say `ok` again, the
/// two users already in a call across instances can still talk, and newcomers on different
/// instances meet: no restart, no manual step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_is_survived() {
    let _serial = one_at_a_time().await;
    let mut redis = RedisServer::start();
    let servers = pool(&redis, 2).await;
    let mut a = servers[0].client().await;
    let mut b = servers[1].client().await;
    a.join().await;
    wait_waiting(servers[0].addr, 1, "a waits").await;
    b.join().await;
    let room = a.recv_type("matched").await["room"].clone();
    b.recv_type("matched").await;

    redis.kill();
    for server in &servers {
        wait_health(server, "unreachable").await;
    }
    // Still connected: the server answers a bad message with an error, not a close.
    a.send_text("not json".into()).await;
    assert_eq!(a.recv().await["code"], "bad_message");

    redis.restart();
    for server in &servers {
        wait_health(server, "ok").await;
    }
    // The subscription comes back within its backoff; retry a few times, bounded.
    let mut heard = false;
    for i in 0..20 {
        a.send(json!({"type": "chat", "room": room, "text": format!("still there? {i}")}))
            .await;
        if let Ok(msg) = tokio::time::timeout(Duration::from_millis(250), b.recv()).await {
            assert_eq!(msg["type"], "chat");
            heard = true;
            break;
        }
    }
    assert!(heard, "the call's signaling works again after the restart");

    let mut c = servers[0].client().await;
    let mut d = servers[1].client().await;
    c.join().await;
    wait_waiting(servers[0].addr, 1, "c waits").await;
    d.join().await;
    let mc = recv_within(&mut c, "matched", PATIENCE).await;
    let md = recv_within(&mut d, "matched", PATIENCE).await;
    assert_eq!(mc["room"], md["room"]);
}

/// Polls `/healthz` until its `redis` field says `want` (the state changes on the next
/// heartbeat or call; there is no event to await from outside).
async fn wait_health(server: &TestServer, want: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, _, body) = http_get(server.addr, "/healthz").await;
        let health: Value = serde_json::from_str(&body).unwrap_or_default();
        if health["redis"] == want {
            assert_eq!(health["status"], "ok", "still serving: {health}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/healthz never said redis {want}: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A deploy restarts one instance in the middle of a call between users of two instances:
/// the user on the restarting instance is told `bye`, reconnects (to a third instance) and
/// asks for its room; it gets it back, the stranger on the other instance is never told the
/// call ended, and their chat flows again both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_across_instances_survives_a_restart_of_one() {
    let _serial = one_at_a_time().await;
    let redis = RedisServer::start();
    let prefix = fresh_prefix();
    let one = TestServer::start_in_pool(&FLAGS, &redis.url(), &prefix).await;
    let two = TestServer::start_in_pool(&FLAGS, &redis.url(), &prefix).await;
    let mut a = one.client().await;
    let mut b = two.client().await;
    a.join().await;
    wait_waiting(one.addr, 1, "a waits").await;
    b.join().await;
    let matched = a.recv_type("matched").await;
    let (room, proof) = (matched["room"].clone(), matched["proof"].clone());
    b.recv_type("matched").await;

    one.shutdown().await;
    assert_eq!(a.recv().await["type"], "bye");
    let three = TestServer::start_in_pool(&FLAGS, &redis.url(), &prefix).await;
    let mut a = three.client().await;
    a.send(json!({"type": "resume", "room": room, "proof": proof}))
        .await;
    assert_eq!(
        a.recv().await,
        json!({"type": "resumed", "room": room}),
        "the room is back"
    );
    // b hears its stranger is back (a negotiation sent meanwhile may have been lost), and
    // nothing else: no `left` came first. Relays now reach the stranger's new instance, both
    // ways.
    assert_eq!(b.recv().await, json!({"type": "resumed", "room": room}));
    a.send(json!({"type": "chat", "room": room, "text": "back"}))
        .await;
    assert_eq!(
        b.recv().await["text"],
        "back",
        "b hears a, and no `left` came first"
    );
    b.send(json!({"type": "chat", "room": room, "text": "welcome back"}))
        .await;
    assert_eq!(a.recv().await["text"], "welcome back");
    drop(two);
}

/// Both members of a call were on the instance that restarted; they reconnect to two
/// different instances and still get their room back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_members_resume_on_different_instances() {
    let _serial = one_at_a_time().await;
    let redis = RedisServer::start();
    let prefix = fresh_prefix();
    let old = TestServer::start_in_pool(&FLAGS, &redis.url(), &prefix).await;
    let ((a, proof_a), (b, proof_b), room) = old.pair_with_proofs().await;
    old.shutdown().await;
    drop((a, b));

    let two = TestServer::start_in_pool(&FLAGS, &redis.url(), &prefix).await;
    let three = TestServer::start_in_pool(&FLAGS, &redis.url(), &prefix).await;
    let mut a = two.client().await;
    let mut b = three.client().await;
    a.send(json!({"type": "resume", "room": room, "proof": proof_a}))
        .await;
    b.send(json!({"type": "resume", "room": room, "proof": proof_b}))
        .await;
    let back = json!({"type": "resumed", "room": room});
    assert_eq!(a.recv().await, back);
    assert_eq!(b.recv().await, back);
    a.send(json!({"type": "chat", "room": room, "text": "hi again"}))
        .await;
    assert_eq!(b.recv().await["text"], "hi again");
    b.send(json!({"type": "next"})).await;
    b.recv_type("waiting").await;
    assert_eq!(a.recv_type("left").await["reason"], "skipped");
}

/// A stuck Redis (here `DEBUG SLEEP 3`: it answers nobody for three seconds) stalls no
/// session: while it sleeps, two users of one instance in a call keep talking, `/healthz`
/// answers, and a user who joins is told `waiting` at once. The order of events proves it:
/// all of that happens before Redis answers the `DEBUG SLEEP` itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_redis_stalls_no_session() {
    let _serial = one_at_a_time().await;
    let redis = RedisServer::start();
    let servers = pool(&redis, 1).await;
    let server = &servers[0];
    let (mut a, mut b, room) = server.pair().await;

    let port = redis.port;
    let stuck = tokio::task::spawn_blocking(move || {
        let probe = RedisServer::at(port);
        probe.command("DEBUG SLEEP 3")
    });
    // Give the DEBUG SLEEP a moment to reach Redis (nothing tells us it has). If it has not,
    // the PING below is answered at once and the test fails, never passes by luck: that
    // PING still unanswered after everything below is the proof Redis slept throughout.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let asleep = tokio::task::spawn_blocking(move || RedisServer::at(port).command("PING"));

    a.send(json!({"type": "chat", "room": room, "text": "are you there?"}))
        .await;
    assert_eq!(b.recv().await["text"], "are you there?");
    assert_eq!(server.health().await["status"], "ok");
    let mut c = server.client().await;
    c.join().await;
    assert!(
        !stuck.is_finished() && !asleep.is_finished(),
        "all of this happened while Redis was still asleep"
    );
    assert!(stuck.await.unwrap().starts_with("+OK"));
}

/// An early offer made on one instance reaches, in its `matched`, the stranger the shared
/// queue pairs it with on another; the offer waits in Redis with the wait, and is gone with
/// it. A stranger there that does not take early offers gets it as an ordinary `offer`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_offer_reaches_a_stranger_on_another_instance() {
    let _serial = one_at_a_time().await;
    let redis = RedisServer::start();
    let prefix = fresh_prefix();
    let mut servers = Vec::new();
    for _ in 0..2 {
        servers.push(TestServer::start_in_pool(&FLAGS, &redis.url(), &prefix).await);
    }
    let sdp = "v=0\r\no=- 9 2 IN IP4 127.0.0.1\r\ns=- with spaces\r\n";
    let mut w = servers[0].client().await;
    w.join().await;
    w.send(json!({"type": "early_offer", "sdp": sdp})).await;
    // Stored in the wait's record by instance 1, which runs it after the join.
    wait_for_offers(&redis, &prefix, 1).await;

    let mut x = servers[1].client().await;
    x.join_ahead().await;
    let mx = x.recv_type("matched").await;
    let mw = w.recv_type("matched").await;
    assert_eq!(mx["room"], mw["room"]);
    assert_eq!(
        (&mx["role"], &mx["offer"]),
        (&json!("answerer"), &json!(sdp))
    );
    assert_eq!(
        (&mw["role"], &mw["offered"]),
        (&json!("offerer"), &json!(true))
    );
    wait_for_offers(&redis, &prefix, 0).await;

    // A client there that does not take early offers in `matched` gets this one as the
    // ordinary `offer` right after it, its instance turning one into the other.
    w.send(json!({"type": "leave"})).await;
    x.recv_type("left").await;
    w.join().await;
    w.send(json!({"type": "early_offer", "sdp": sdp})).await;
    wait_for_offers(&redis, &prefix, 1).await;
    let mut old = servers[1].client().await;
    old.join().await;
    let mo = old.recv_type("matched").await;
    let mw = w.recv_type("matched").await;
    assert_eq!(mo["room"], mw["room"]);
    assert!(mo.get("offer").is_none(), "{mo}");
    assert_eq!(mw["offered"], true);
    assert_eq!(
        old.recv().await,
        json!({"type": "offer", "room": mo["room"], "sdp": sdp})
    );
}

/// Waits until `n` waits in the shared queue hold an early offer (asking Redis every 25 ms,
/// for a while: the queue's state is not visible otherwise).
async fn wait_for_offers(redis: &RedisServer, prefix: &str, n: usize) {
    let count = format!(
        "EVAL \"local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do n = n + redis.call('HEXISTS', k, 'x') end return n\" 0 {{{prefix}}}:w:*"
    );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let reply = redis.command(&count);
        if reply.trim() == format!(":{n}") {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Redis holds no {n} early offers: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
