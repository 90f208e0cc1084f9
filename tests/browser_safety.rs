//! "Blur until safe" in real browsers: Chromium pages whose fake camera plays a generated
//! video of ordinary, safe content (a gradient and a cartoon face, `Y4m`) meet through a real
//! server, and the real classifier (TensorFlow.js and the vendored NSFWJS model, in the page's
//! worker) decides what each page shows of the stranger. What is checked is what the user
//! sees: the video element's computed `filter` at every frame it presents, the notice over
//! it and its buttons, the switches.
//!
//! - At the server's default threshold the content is judged safe: blurred at its first frame,
//!   then shown.
//! - With `--unsafe-threshold` set to a quarter of the lowest score the classifier gave that content,
//!   the same content is judged unsafe: never shown, with the notice, Next and Report; a tap
//!   does not reveal it; Next moves on; "Auto-skip unsafe" presses Next by itself.
//! - "Blur until safe" switched off is remembered across a reload: no blur, no model download.
//! - In a browser that can run neither the WebAssembly nor the WebGL backend (a WebAssembly
//!   engine that cannot give the model its memory, no GL) the model cannot load: blurred,
//!   with a plain explanation and "Tap to show".
//!
//! Scenarios run one at a time; without Chromium they are skipped loudly, except in CI.

mod browser_harness;
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use browser_harness as harness;
use browser_harness::{Browser, Media, PATIENCE, Page, assert_no_console_errors};
use common::TestServer;
use serde_json::Value;

/// A call's first verdict needs the model (7.8 MB from loopback, compiled) and a classified
/// frame on two busy cores.
const VERDICT_PATIENCE: Duration = Duration::from_secs(45);

/// Records, for the stranger's video, the computed `filter` at the first frame it presents
/// and how many presented frames were not blurred (`window.__shown`), on every document.
const FRAME_WATCH: &str = r#"(() => {
  window.__shown = { first: null, frames: 0, unblurred: 0 };
  const watch = () => {
    const video = document.getElementById('remote-video');
    if (!video || typeof video.requestVideoFrameCallback !== 'function') return;
    const onFrame = () => {
      const filter = getComputedStyle(video).filter;
      if (window.__shown.first === null) window.__shown.first = filter;
      window.__shown.frames += 1;
      if (!filter.includes('blur(')) window.__shown.unblurred += 1;
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watch);
  else watch();
})();"#;

/// True once the stranger's video is shown unblurred (the filter the user sees).
const UNBLURRED: &str = "getComputedStyle(document.getElementById('remote-video')).filter === 'none' \
     && document.getElementById('safety-notice').hidden";

/// The notice over the stranger's video, if shown: its kind, text and visible buttons.
const NOTICE: &str = r#"(() => {
  const n = document.getElementById('safety-notice');
  if (n.hidden) return null;
  const buttons = [...n.querySelectorAll('button')].filter((b) => !b.hidden && b.offsetParent !== null);
  return {
    kind: n.dataset.kind,
    text: n.textContent.replace(/\s+/g, ' ').trim(),
    buttons: buttons.map((b) => b.textContent.trim()),
    filter: getComputedStyle(document.getElementById('remote-video')).filter,
  };
})()"#;

/// A Y4M video (what Chromium's fake camera can play) of ordinary content: a blue-grey
/// gradient and a cartoon face drifting left and right; 320×240, 15 frames a second, 2 s.
struct Y4m {
    path: PathBuf,
}

impl Y4m {
    fn write(dir: &Path) -> Y4m {
        const W: usize = 320;
        const H: usize = 240;
        const FRAMES: usize = 30;
        let mut out = format!("YUV4MPEG2 W{W} H{H} F15:1 Ip A1:1 C420jpeg\n").into_bytes();
        for f in 0..FRAMES {
            let shift = (f as f64 / FRAMES as f64 * std::f64::consts::TAU).sin() * 20.0;
            let (cx, cy) = (W as f64 / 2.0 + shift, H as f64 / 2.0);
            let mut y_plane = vec![0u8; W * H];
            for y in 0..H {
                for x in 0..W {
                    let (dx, dy) = ((x as f64 - cx) / 70.0, (y as f64 - cy) / 90.0);
                    let in_face = dx * dx + dy * dy <= 1.0;
                    let eye = |ex: f64| {
                        let (ex, ey) = (x as f64 - (cx + ex), y as f64 - (cy - 25.0));
                        ex * ex + ey * ey <= 100.0
                    };
                    let mouth =
                        (y as f64 - (cy + 40.0)).abs() < 4.0 && (x as f64 - cx).abs() < 30.0;
                    y_plane[y * W + x] = if in_face && (eye(-25.0) || eye(25.0) || mouth) {
                        30
                    } else if in_face {
                        200
                    } else {
                        (60 + y * 120 / H) as u8
                    };
                }
            }
            out.extend_from_slice(b"FRAME\n");
            out.extend_from_slice(&y_plane);
            // Chroma at quarter resolution: bluish outside the face, warm inside it.
            for plane in [(150u8, 110u8), (120u8, 150u8)] {
                for y in 0..H / 2 {
                    for x in 0..W / 2 {
                        let (dx, dy) = ((2 * x) as f64 - cx, (2 * y) as f64 - cy);
                        let inside = (dx / 70.0).powi(2) + (dy / 90.0).powi(2) <= 1.0;
                        out.push(if inside { plane.1 } else { plane.0 });
                    }
                }
            }
        }
        let path = dir.join("ordinary.y4m");
        std::fs::write(&path, out).expect("write the fake camera's video");
        Y4m { path }
    }

    fn switch(&self) -> String {
        format!("--use-file-for-fake-video-capture={}", self.path.display())
    }
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "strangers-safety-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two Chromiums whose cameras play the ordinary video, watching the stranger's frames.
async fn two_pages(tools: &harness::Tools, base: &str, video: &Y4m) -> (Browser, Browser) {
    let switches = [video.switch()];
    let (a, b) = tokio::join!(
        Browser::launch_chromium_with(tools, "A", base, Media::Fake, &switches),
        Browser::launch_chromium_with(tools, "B", base, Media::Fake, &switches)
    );
    for page in [&a, &b] {
        page.add_init_script(FRAME_WATCH).await;
    }
    (a, b)
}

/// Both pages open `base`'s call page, start (the 18+ box ticked on that site first, as its
/// visitors must), and see each other's video; returns A's room.
async fn call(a: &Page, b: &Page, base: &str) -> String {
    tokio::join!(a.confirm_adult_at(base), b.confirm_adult_at(base));
    a.open_url(&format!("{base}/chat?start=1")).await;
    b.open_url(&format!("{base}/chat?start=1")).await;
    let (room, _) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    room
}

async fn shown(page: &Page) -> Value {
    page.eval("window.__shown").await
}

/// Waits for the notice of `kind` and returns it.
async fn wait_notice(page: &Page, kind: &str) -> Value {
    page.wait_for(
        &format!("(() => {{ const n = {NOTICE}; return n && n.kind === '{kind}' && n; }})()"),
        &format!("the {kind} notice over the stranger's video"),
        VERDICT_PATIENCE,
    )
    .await
}

/// Ordinary content is blurred at its first frame and shown after the classifier's safe
/// verdict. Then, on a server whose threshold is a quarter of the score the classifier gave that
/// content, the same content is never shown: the unsafe notice offers Next and Report, a tap
/// does not reveal it, the notice's Next moves on to a new call (blurred again), and with
/// "Auto-skip unsafe" on, the page presses Next by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_strangers_video_is_shown_only_after_a_safe_verdict() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let scratch = Scratch::new();
    let video = Y4m::write(&scratch.0);
    let safe_server = TestServer::start(&[]).await;
    let safe_base = format!("http://{}", safe_server.addr);
    let (a, b) = two_pages(&tools, &safe_base, &video).await;

    call(&a, &b, &safe_base).await;
    for page in [&a, &b] {
        page.wait_for(
            UNBLURRED,
            "the video shown after a safe verdict",
            VERDICT_PATIENCE,
        )
        .await;
        let seen = shown(page).await;
        assert!(
            seen["first"].as_str().unwrap_or("").contains("blur("),
            "{}: the stranger's first frame is blurred: {seen}",
            page.name
        );
    }
    // The lowest unsafe-class probability the classifier gave this content's frames.
    let scores = a.eval("window.__strangers.safety.scores").await;
    let score = scores
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .fold(f64::INFINITY, f64::min);
    assert!(
        score < 0.5,
        "ordinary content scores under the default threshold: {scores}"
    );

    // The same content, the real classifier, a threshold well under what it says about it.
    let threshold = format!("{:.6}", (score / 4.0).max(1e-6));
    let strict_server = TestServer::start(&["--unsafe-threshold", &threshold]).await;
    let strict_base = format!("http://{}", strict_server.addr);
    let room = call(&a, &b, &strict_base).await;
    drop(safe_server); // only now: no page is left to reconnect to it
    let notice = wait_notice(&a, "unsafe").await;
    assert!(
        notice["text"].as_str().unwrap_or("").contains("nudity"),
        "{notice}"
    );
    assert_eq!(
        notice["buttons"],
        serde_json::json!(["Next", "Report"]),
        "{notice}"
    );
    assert!(
        notice["filter"].as_str().unwrap_or("").contains("blur("),
        "{notice}"
    );
    // A tap on the video (under the notice) reveals nothing.
    a.eval("document.getElementById('remote-video').click()")
        .await;
    let after_tap = a.eval(NOTICE).await;
    assert!(
        after_tap["filter"].as_str().unwrap_or("").contains("blur("),
        "{after_tap}"
    );
    let seen = shown(&a).await;
    assert!(seen["frames"].as_u64().unwrap_or(0) > 0, "{seen}");
    assert_eq!(
        seen["unblurred"], 0,
        "no frame of this call was shown: {seen}"
    );

    // The notice's Next leads to a new call, blurred from its first frame again.
    a.click_css("#safety-next").await;
    let next_room = a
        .wait_for(
            &format!(
                "(() => {{ const r = window.__strangers.room; return r && r !== '{room}' && r; }})()"
            ),
            "a new call after the notice's Next",
            PATIENCE,
        )
        .await;
    wait_notice(&a, "unsafe").await;
    assert_eq!(shown(&a).await["unblurred"], 0);

    // With "Auto-skip unsafe" on, the next unsafe verdict presses Next without the user.
    a.click_css("#auto-skip-unsafe").await;
    a.wait_for(
        &format!(
            "(() => {{ const r = window.__strangers.room; return r !== {next_room} && true; }})()"
        ),
        "Auto-skip unsafe moving on by itself",
        VERDICT_PATIENCE,
    )
    .await;
    assert_eq!(
        shown(&a).await["unblurred"],
        0,
        "nothing was shown on the way"
    );
    assert_no_console_errors(&[&a, &b]).await;
}

/// "Blur until safe" switched off stays off after a reload: the stranger's video is shown from
/// its first frame, and the model is never downloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blur_until_safe_switched_off_is_remembered() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let scratch = Scratch::new();
    let video = Y4m::write(&scratch.0);
    let server = TestServer::start(&[]).await;
    let base = format!("http://{}", server.addr);
    let (a, b) = two_pages(&tools, &base, &video).await;

    a.open("/chat").await;
    assert_eq!(
        a.eval("document.getElementById('blur-safe').checked").await,
        true,
        "on by default"
    );
    a.click_css("#blur-safe").await;
    a.open("/chat").await;
    assert_eq!(
        a.eval("document.getElementById('blur-safe').checked").await,
        false,
        "the choice is remembered"
    );
    a.click_button("Start").await;
    b.open("/chat?start=1").await;
    let (_, _) = tokio::join!(a.wait_video(PATIENCE), b.wait_video(PATIENCE));
    a.wait_for(UNBLURRED, "the stranger's video shown", PATIENCE)
        .await;
    let seen = shown(&a).await;
    assert_eq!(
        seen["first"], "none",
        "not blurred even at its first frame: {seen}"
    );
    let fetched = a
        .eval("performance.getEntriesByType('resource').map((r) => r.name).filter((n) => n.includes('/vendor/') || n.includes('safety-worker'))")
        .await;
    assert_eq!(
        fetched,
        serde_json::json!([]),
        "nothing of the model was downloaded"
    );
    // B kept the default: blurred at first, shown after its safe verdict.
    b.wait_for(
        UNBLURRED,
        "B's video shown after a safe verdict",
        VERDICT_PATIENCE,
    )
    .await;
    assert!(
        shown(&b).await["first"]
            .as_str()
            .unwrap_or("")
            .contains("blur(")
    );
    assert_no_console_errors(&[&a, &b]).await;
}

/// A browser that can run neither WebAssembly with the model's memory nor WebGL cannot run
/// the model: the stranger's video stays
/// blurred with a plain explanation and "Tap to show", which shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_the_video_stays_blurred_until_tapped() {
    let Some(tools) = harness::tools_or_skip() else {
        return;
    };
    let _turn = harness::exclusive().await;
    let scratch = Scratch::new();
    let video = Y4m::write(&scratch.0);
    let server = TestServer::start(&[]).await;
    let base = format!("http://{}", server.addr);
    let switches = [
        video.switch(),
        // WebAssembly that cannot give a module the memory it asks for, and no GL at all (no
        // GPU, no software fallback): no backend the check can use.
        "--js-flags=--wasm-max-mem-pages=16".to_string(),
        "--disable-software-rasterizer".to_string(),
    ];
    let plain = [video.switch()];
    let (a, b) = tokio::join!(
        Browser::launch_chromium_with(&tools, "A", &base, Media::Fake, &switches),
        Browser::launch_chromium_with(&tools, "B", &base, Media::Fake, &plain)
    );
    a.add_init_script(FRAME_WATCH).await;
    call(&a, &b, &base).await;
    let notice = wait_notice(&a, "failed").await;
    assert!(
        notice["text"].as_str().unwrap_or("").contains("can't run"),
        "{notice}"
    );
    assert_eq!(
        notice["buttons"],
        serde_json::json!(["Tap to show"]),
        "{notice}"
    );
    assert!(
        notice["filter"].as_str().unwrap_or("").contains("blur("),
        "{notice}"
    );
    assert_eq!(shown(&a).await["unblurred"], 0, "never silently unblurred");
    a.click_button("Tap to show").await;
    a.wait_for(UNBLURRED, "the video shown after the tap", PATIENCE)
        .await;
    assert_no_console_errors(&[&a, &b]).await;
}
