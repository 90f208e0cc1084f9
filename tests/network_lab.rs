//! The product in a small real-world Internet (see `tests/lab`): homes behind NATs and
//! firewalls, a TURN relay, latency, loss and outages, on the real pages in real Chromium
//! (and, in scenario 8, Firefox).
//! Every scenario presses the real Start / Next / Stop buttons, and ends by checking that
//! no packet was meant for anywhere outside the lab.
//!
//! Runs as root (it makes network namespaces); without root it says so loudly and skips,
//! except in CI, where that fails.

mod browser_harness;
mod lab;

use std::time::Duration;

use browser_harness as harness;
use lab::pages::{
    self, assert_relayed, chat, meet, next_to, open_chat, selected_pair, start_waiting,
};
use lab::privacy;
use lab::services::Offer;
use lab::topology::router_wan;
use lab::{Home, Lab, bounded};

/// The longest a scenario may take, start-up and teardown included.
const SCENARIO_LIMIT: Duration = Duration::from_secs(90);

/// 1. Two homes behind endpoint-independent NATs, STUN only in use: the call connects and
/// decodes video both ways, browser to browser: neither side's selected pair is a relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_homes_behind_eim_nats_connect_directly() {
    let _turn = harness::exclusive().await;
    let Some(lab) = Lab::start(&[Home::EIM, Home::EIM], Offer::Turn) else {
        return;
    };
    bounded(SCENARIO_LIMIT, async {
        let pages = lab.browsers(&[(0, "A"), (1, "B")]).await;
        let [a, b] = &pages[..] else { unreachable!() };
        open_chat(a).await;
        open_chat(b).await;
        meet(a, b).await;
        for (page, stranger) in [(a, 1), (b, 0)] {
            let pair = selected_pair(page).await;
            eprintln!("{}: selected pair {pair}", page.name);
            assert_eq!(
                pair["remote"]["address"],
                router_wan(stranger),
                "{}: the stranger is reached at its router's public address: {pair}",
                page.name
            );
            for side in ["local", "remote"] {
                assert_ne!(
                    pair[side]["type"], "relay",
                    "{}: the call goes browser to browser through the NATs: {pair}",
                    page.name
                );
            }
            assert_eq!(
                pair["local"]["protocol"], "udp",
                "{}: over UDP: {pair}",
                page.name
            );
        }
        harness::assert_no_console_errors(&[a, b]).await;
    })
    .await;
    lab.assert_contained();
}

/// 2. Behind a symmetric NAT a direct path cannot be punched: the call goes through the
/// TURN relay with the credentials the server handed out, the user does nothing. First one
/// symmetric home with an endpoint-independent one, then (B presses Next while C waits)
/// two symmetric homes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symmetric_nats_connect_through_the_relay() {
    let _turn = harness::exclusive().await;
    let homes = [Home::EIM, Home::SYMMETRIC, Home::SYMMETRIC];
    let Some(lab) = Lab::start(&homes, Offer::Turn) else {
        return;
    };
    bounded(SCENARIO_LIMIT, async {
        let pages = lab.browsers(&[(0, "A"), (1, "B"), (2, "C")]).await;
        let [a, b, c] = &pages[..] else {
            unreachable!()
        };
        for page in [a, b, c] {
            open_chat(page).await;
        }
        let room = meet(a, b).await;
        for page in [a, b] {
            let pair = assert_relayed(page).await;
            eprintln!("EIM + symmetric, {}: {pair}", page.name);
        }
        start_waiting(c).await;
        next_to(b, &room, c).await;
        for page in [b, c] {
            let pair = assert_relayed(page).await;
            eprintln!("symmetric + symmetric, {}: {pair}", page.name);
        }
        harness::assert_no_console_errors(&[a, b, c]).await;
    })
    .await;
    lab.assert_contained();
}

/// 3. A home whose router drops all UDP: no STUN, no UDP relay, no direct path. The server
/// offers TURN over TCP as well, and the call connects through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_without_udp_connects_over_turn_tcp() {
    let _turn = harness::exclusive().await;
    let Some(lab) = Lab::start(&[Home::NO_UDP, Home::EIM], Offer::Turn) else {
        return;
    };
    bounded(SCENARIO_LIMIT, async {
        let pages = lab.browsers(&[(0, "A"), (1, "B")]).await;
        let [a, b] = &pages[..] else { unreachable!() };
        open_chat(a).await;
        open_chat(b).await;
        meet(a, b).await;
        let pair = selected_pair(a).await;
        eprintln!("A (no UDP): {pair}");
        assert_eq!(
            pair["local"]["type"], "relay",
            "A's media leaves through its relay: {pair}"
        );
        assert_eq!(
            pair["local"]["relayProtocol"], "tcp",
            "A reaches the relay over TCP: {pair}"
        );
        assert_relayed(b).await;
        harness::assert_no_console_errors(&[a, b]).await;
    })
    .await;
    lab.assert_contained();
}

/// 6. A deploy mid-call: the server gets SIGTERM (says `bye` to everyone) and a new process
/// takes its address. The video, browser to browser, keeps decoding; both pages come back
/// on signaling, get their room back (`resumed`) and can chat in it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_call_keeps_the_call() {
    let _turn = harness::exclusive().await;
    let Some(mut lab) = Lab::start(&[Home::EIM, Home::EIM], Offer::Turn) else {
        return;
    };
    let pages = bounded(SCENARIO_LIMIT, async {
        let pages = lab.browsers(&[(0, "A"), (1, "B")]).await;
        open_chat(&pages[0]).await;
        open_chat(&pages[1]).await;
        let room = meet(&pages[0], &pages[1]).await;
        (pages, room)
    })
    .await;
    lab.restart_server(Offer::Turn);
    bounded(SCENARIO_LIMIT, async {
        let (browsers, room) = &pages;
        let [a, b] = &browsers[..] else {
            unreachable!()
        };
        for page in [a, b] {
            let before = page.frames_decoded().await;
            page.wait_for(
                &format!(
                    "window.__rec.msgs.some((m) => m.type === 'resumed' && m.room === {room:?}) \
                     && document.getElementById('conn').dataset.status === 'connected'"
                ),
                "the room back after the restart",
                Duration::from_secs(15),
            )
            .await;
            assert_eq!(page.eval("window.__strangers.room").await, room.as_str());
            page.wait_for(
                &format!("({}) > {before}", harness::FRAMES_DECODED),
                "frames still decoding",
                Duration::from_secs(5),
            )
            .await;
        }
        chat(a, b, "still here after the deploy").await;
        pages::assert_no_errors_but_reconnects(&[a, b]).await;
    })
    .await;
    lab.assert_contained();
}

/// 7. Real-world paths: 40 ms one way on every home's uplink (80 ms between homes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_next_and_chat_work_at_80_ms_rtt() {
    impaired_calls(Duration::from_millis(40), 0.0).await;
}

/// 7. Real-world paths: 2 % of every home's uplink packets lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_next_and_chat_work_with_2_percent_loss() {
    impaired_calls(Duration::ZERO, 0.02).await;
}

/// With every uplink delayed and lossy as given: A and B meet and chat, then A presses Next
/// while C waits, meets C, and they chat.
async fn impaired_calls(delay: Duration, loss: f64) {
    let _turn = harness::exclusive().await;
    let Some(lab) = Lab::start(&[Home::EIM, Home::EIM, Home::EIM], Offer::Turn) else {
        return;
    };
    for i in 0..3 {
        lab.link(i).set_uplink_delay(delay);
        lab.link(i).set_uplink_loss(loss);
    }
    bounded(SCENARIO_LIMIT, async {
        let pages = lab.browsers(&[(0, "A"), (1, "B"), (2, "C")]).await;
        let [a, b, c] = &pages[..] else {
            unreachable!()
        };
        for page in [a, b, c] {
            open_chat(page).await;
        }
        let room = meet(a, b).await;
        chat(a, b, "hello from A").await;
        chat(b, a, "hi A, B here").await;
        start_waiting(c).await;
        next_to(a, &room, c).await;
        chat(c, a, "C says hello").await;
        harness::assert_no_console_errors(&[a, b, c]).await;
    })
    .await;
    lab.assert_contained();
}

/// 4. Hide my IP, in both roles: A hides its address, B does not. Over several calls (B
/// presses Next, A's Auto-next brings them together again) until A has been both offerer
/// and answerer, B never learns a candidate of A's that is not the relay's: not trickled,
/// not in an SDP, not known to B's ICE agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hide_my_ip_shows_only_the_relay_in_both_roles() {
    let _turn = harness::exclusive().await;
    let Some(lab) = Lab::start(&[Home::EIM, Home::EIM], Offer::Turn) else {
        return;
    };
    bounded(SCENARIO_LIMIT, async {
        let pages = lab.browsers(&[(0, "A"), (1, "B")]).await;
        let [a, b] = &pages[..] else { unreachable!() };
        open_chat(a).await;
        a.click_css("#hide-ip").await;
        assert_eq!(a.eval("window.__strangers.hideIp").await, true);
        open_chat(b).await;
        let room = meet(a, b).await;
        let roles = hidden_calls(a, b, room).await;
        let learned = pages::learned_candidates(b).await;
        let (count, leaks) = privacy::non_relay_candidates(&learned);
        assert!(count > 0, "B learned A's relay candidates: {learned}");
        assert!(
            leaks.is_empty(),
            "B learned more of A than its relay ({roles:?}):\n{leaks}"
        );
        eprintln!(
            "over {} calls (A {roles:?}) B learned {count} candidates of A's, all the relay's",
            roles.len()
        );
        // The control: the recording does see addresses when they are sent.
        let from_b = pages::learned_candidates(a).await;
        assert!(
            privacy::signaled_any_of_type(&from_b, "host"),
            "A saw B's host candidates"
        );
        harness::assert_no_console_errors(&[a, b]).await;
    })
    .await;
    lab.assert_contained();
}

/// 4. Hide my IP fails closed. A turned it on during an earlier visit; now the server
/// offers no relay. Before any call A is told why it cannot call while hiding, Start is
/// off and no call starts (B, waiting, hears nothing of A). Once A turns Hide my IP off
/// (and it can no longer be turned on), A calls directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hide_my_ip_without_a_relay_makes_no_call() {
    let _turn = harness::exclusive().await;
    let Some(mut lab) = Lab::start(&[Home::EIM, Home::EIM], Offer::Turn) else {
        return;
    };
    let pages = bounded(SCENARIO_LIMIT, async {
        let pages = lab.browsers(&[(0, "A"), (1, "B")]).await;
        open_chat(&pages[0]).await;
        pages[0].click_css("#hide-ip").await;
        pages
    })
    .await;
    lab.restart_server(Offer::StunOnly);
    bounded(SCENARIO_LIMIT, async {
        let [a, b] = &pages[..] else { unreachable!() };
        open_chat(a).await; // the next visit, with the preference saved
        open_chat(b).await;
        let told = a
            .eval(
                "({ status: document.getElementById('status').textContent, \
                    start: document.getElementById('start').disabled, \
                    hide: document.getElementById('hide-ip').checked })",
            )
            .await;
        assert!(
            told["status"].as_str().is_some_and(|s| s.contains("Hide my IP is on, but no relay")),
            "A is told why it cannot call while hiding: {told}"
        );
        assert_eq!(told["start"], true, "Start is off while hiding without a relay: {told}");
        assert_eq!(told["hide"], true, "the saved choice is kept, and shown: {told}");
        start_waiting(b).await;
        let heard = b
            .eval("window.__rec.msgs.filter((m) => ['matched', 'candidate', 'offer', 'answer'].includes(m.type)).length")
            .await;
        assert_eq!(heard, 0, "B heard nothing of A");

        a.click_css("#hide-ip").await; // off: calls are direct from now on
        assert!(!a.is_displayed("#hide-ip").await, "without a relay it cannot be turned on again");
        a.click_button("Start").await;
        pages::wait_picture(a).await;
        pages::wait_picture(b).await;
        let from_a = pages::learned_candidates(b).await;
        assert!(
            privacy::signaled_any_of_type(&from_a, "host") || privacy::signaled_any_of_type(&from_a, "srflx"),
            "with Hide my IP off, the call is direct: {from_a}"
        );
        harness::assert_no_console_errors(&[a, b]).await;
    })
    .await;
    lab.assert_contained();
}

/// 8. Firefox in the lab: F, a Firefox behind a symmetric NAT, meets C, a Chromium in
/// another home. The call goes through the TURN relay (F's selected pair, which Firefox
/// marks `selected` on the pair itself, and C's) with video both ways, and chat works.
/// Without Hide my IP, C learns F's own addresses (host and server-reflexive), so the
/// recording sees them when they are sent. Then F turns Hide my IP on, and over the next
/// calls (until F has been offerer and answerer) C never learns a candidate of F's that is
/// not the relay's: not trickled, not in an SDP, not known to C's ICE agent, and no
/// candidate line names another address of F's as its related address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_behind_a_symmetric_nat_calls_through_the_relay_and_hides_its_ip() {
    let _turn = harness::exclusive().await;
    if harness::firefox_tools_or_skip().is_none() {
        return;
    }
    let Some(lab) = Lab::start(&[Home::SYMMETRIC, Home::EIM], Offer::Turn) else {
        return;
    };
    bounded(SCENARIO_LIMIT, async {
        let f = lab.firefox(0, "F").await;
        let chromium = lab.browsers(&[(1, "C")]).await;
        let (f, c) = (&*f, &*chromium[0]);
        open_chat(f).await;
        open_chat(c).await;
        let room = meet(f, c).await;
        for page in [f, c] {
            let pair = assert_relayed(page).await;
            eprintln!("Firefox behind a symmetric NAT, {}: {pair}", page.name);
        }
        chat(f, c, "hello from Firefox").await;
        chat(c, f, "hi, Chromium here").await;
        let open = pages::learned_candidates(c).await;
        for typ in ["host", "srflx"] {
            assert!(
                privacy::signaled_any_of_type(&open, typ),
                "without Hide my IP, C learns F's {typ} candidates: {open}"
            );
        }

        f.click_css("#hide-ip").await;
        assert_eq!(f.eval("window.__strangers.hideIp").await, true);
        // C comes back with a fresh page (and recording); F, left, looks again by itself.
        open_chat(c).await;
        c.click_button("Start").await;
        let (room_f, room_c) =
            tokio::join!(pages::wait_new_picture(f, &room), pages::wait_picture(c));
        assert_eq!(room_f, room_c, "F and C meet again");
        let roles = hidden_calls(f, c, room_f).await;
        let learned = pages::learned_candidates(c).await;
        let (count, leaks) = privacy::non_relay_candidates(&learned);
        assert!(count > 0, "C learned F's relay candidates: {learned}");
        assert!(
            leaks.is_empty(),
            "C learned more of Firefox than its relay ({roles:?}):\n{leaks}"
        );
        eprintln!(
            "over {} calls (F {roles:?}) C learned {count} candidates of F's, all the relay's",
            roles.len()
        );
        harness::assert_no_console_errors(&[f, c]).await;
    })
    .await;
    lab.assert_contained();
}

/// `f` (hiding its address) and `c` in a call in `room`: `f` and `c` take turns pressing
/// Next (the other's Auto-next brings them together again) until `f` has been offerer and
/// answerer; in every call `f`'s media leaves through the relay. Waits for the end of `f`'s
/// candidates in the last call; returns `f`'s roles.
async fn hidden_calls(f: &harness::Page, c: &harness::Page, mut room: String) -> Vec<String> {
    let mut roles = Vec::new();
    // Whoever presses Next waits, makes its early offer and offers when the other comes back
    // (Auto-next): C and F take turns, so F has both roles within two calls.
    for _call in 0..8 {
        let pair = selected_pair(f).await;
        eprintln!("{} hiding: {pair}", f.name);
        assert_eq!(
            pair["local"]["type"], "relay",
            "{}'s media leaves through the relay: {pair}",
            f.name
        );
        let role = f.eval("window.__strangers.role").await;
        roles.push(role.as_str().unwrap_or_default().to_string());
        if roles.iter().any(|r| r == "offerer") && roles.iter().any(|r| r == "answerer") {
            break;
        }
        let presser = if roles.len() % 2 == 1 { f } else { c };
        presser.click_button("Next").await;
        let (new_f, new_c) = tokio::join!(
            pages::wait_new_picture(f, &room),
            pages::wait_new_picture(c, &room)
        );
        assert_eq!(new_f, new_c);
        room = new_f;
    }
    assert!(
        roles.iter().any(|r| r == "offerer") && roles.iter().any(|r| r == "answerer"),
        "{} was offerer and answerer: {roles:?}",
        f.name
    );
    c.wait_for(
        "window.__rec.msgs.some((m) => m.type === 'candidate' && m.candidate === null && m.room === window.__strangers.room)",
        &format!("the end of {}'s candidates", f.name),
        Duration::from_secs(10),
    )
    .await;
    roles
}

/// The Hide my IP check itself, on candidate lines as the two engines write them: a relay
/// candidate passes only when its related address is blank or the relay's own (Chromium
/// hiding, Firefox); one naming the home's public address (Chromium not hiding) is a leak,
/// as are host and server-reflexive candidates.
#[test]
fn the_hide_my_ip_check_flags_related_addresses() {
    let learned = |line: &str| serde_json::json!({ "signaled": [line] });
    for hidden in [
        "candidate:1 1 udp 41885439 203.0.113.10 49160 typ relay raddr 0.0.0.0 rport 0 generation 0",
        "candidate:0 1 UDP 92217343 203.0.113.10 49199 typ relay raddr 203.0.113.10 rport 49199",
        "candidate:0 1 UDP 92217343 203.0.113.10 49199 typ relay",
    ] {
        let (count, leaks) = privacy::non_relay_candidates(&learned(hidden));
        assert_eq!((count, leaks.as_str()), (1, ""), "{hidden}");
    }
    for leak in [
        "candidate:2 1 udp 58663167 203.0.113.10 49239 typ relay raddr 203.0.113.102 rport 47582",
        "candidate:1 1 UDP 1686052863 203.0.113.101 5749 typ srflx raddr 192.168.10.2 rport 33691",
        "candidate:0 1 UDP 2122252543 192.168.10.2 33691 typ host",
    ] {
        let (count, leaks) = privacy::non_relay_candidates(&learned(leak));
        assert_eq!(count, 1, "{leak}");
        assert!(leaks.contains(leak), "{leak} is flagged: {leaks:?}");
    }
}
