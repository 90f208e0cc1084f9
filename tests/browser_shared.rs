//! Two instances, one pool, in real browsers: page A is served by instance 1 and page B by
//! instance 2 (as Fly's proxy might send two people to two machines); both instances share
//! their queue through a real `redis-server` started here. A and B meet, see each other's
//! video, chat across the instances, and B's Next tells A the stranger left.

mod browser_harness;
mod common;

use browser_harness as harness;
use browser_harness::{Browser, Media, PATIENCE, assert_no_console_errors};
use common::TestServer;
use common::redis::{RedisServer, fresh_prefix};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_between_pages_on_two_instances() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _lock = harness::exclusive().await;
    let redis = RedisServer::start();
    let prefix = fresh_prefix();
    let one = TestServer::start_in_pool(&[], &redis.url(), &prefix).await;
    let two = TestServer::start_in_pool(&[], &redis.url(), &prefix).await;
    let (base_one, base_two) = (
        format!("http://{}", one.addr),
        format!("http://{}", two.addr),
    );
    let (a, b) = tokio::join!(
        Browser::launch(&tools, "A", &base_one, Media::Fake),
        Browser::launch(&tools, "B", &base_two, Media::Fake),
    );

    for page in [&a, &b] {
        page.install_recorder().await;
    }
    a.open("/chat?start=1").await;
    common::wait_waiting(one.addr, 1, "A waits on instance 1").await;
    b.open("/chat?start=1").await;
    // wait_video: connected, frames decoded from the stranger's camera, a picture with a size.
    let (room_a, room_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    assert_eq!(
        room_a, room_b,
        "A and B, on different instances, share a room"
    );
    assert_eq!(one.health().await["rooms"], 1);
    assert_eq!(two.health().await["rooms"], 1);

    // Chat crosses the instances.
    a.type_into("#chat-input", "hello from instance one\n")
        .await;
    b.wait_for(
        "[...document.querySelectorAll('#chat-log li.msg.stranger')].some((li) => li.textContent.includes('hello from instance one'))",
        "A's chat line on B's page",
        PATIENCE,
    )
    .await;

    // B presses Next: A (on the other instance) is told the stranger left, and with
    // auto-next on, the two meet again in a new call.
    b.click_button("Next").await;
    a.wait_for(
        "window.__rec.msgs.some((m) => m.type === 'left')",
        "A told that the stranger left",
        PATIENCE,
    )
    .await;
    let (again_a, again_b) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    assert_eq!(again_a, again_b);
    assert_ne!(again_a, room_a, "a new call");
    assert_no_console_errors(&[&a, &b]).await;
}
