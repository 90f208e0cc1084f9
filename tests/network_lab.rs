//! The product in a small real-world Internet (see `tests/lab`): homes behind NATs and
//! firewalls, a TURN relay, latency, loss and outages, on the real pages in real Chromium.
//! Every scenario presses the real Start / Next / Stop buttons, and ends by checking that
//! no packet was meant for anywhere outside the lab.
//!
//! Runs as root (it makes network namespaces); without root it says so loudly and skips,
//! except in CI, where that fails.

mod browser_harness;
mod lab;

use std::time::Duration;

use browser_harness as harness;
use lab::pages::{meet, open_chat, selected_pair};
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
