//! The HTML pages (askama templates under `templates/`) and the static assets (`static/`,
//! compiled into the binary so a deployment is one file).
//!
//! Every asset URL carries `?v=<content hash>`, so browsers may cache assets for a year and a
//! new build is fetched at once. Every page is written in one language ([`crate::i18n`]):
//! its words come from that language's catalog, and it carries the client's part of the
//! catalog for `static/i18n.js`.

use std::sync::LazyLock;

use askama::Template;

use crate::i18n::{Catalog, Lang};

/// What every page's frame (`templates/base.html`) needs besides the page's own content.
#[derive(Clone, Copy)]
pub(crate) struct Frame<'a> {
    /// The asset version for cache-busting URLs.
    pub v: &'a str,
    /// The words of the page's language (`<html lang>`, the switcher, the client's catalog).
    pub i18n: &'static Catalog,
    /// The address the language switcher reloads with `?lang=`.
    pub here: &'a str,
}

impl Frame<'_> {
    /// The languages the switcher offers.
    pub(crate) fn languages(&self) -> [Lang; 5] {
        Lang::ALL
    }
}

/// The landing page: what this is, how many are online, interests, Start.
#[derive(Template)]
#[template(path = "index.html")]
pub(crate) struct IndexPage<'a> {
    /// The frame: asset version, language, switcher.
    pub frame: Frame<'a>,
    /// Users connected now.
    pub online: u64,
    /// How many of them are on video and on text, in the page's words.
    pub in_modes: String,
}

/// The call page: videos, controls and text chat; the client is `static/app.js` and the
/// modules it imports (README.md, "The browser client", says which owns what). In text
/// mode it has no video elements, and the client never asks for the camera.
#[derive(Template)]
#[template(path = "chat.html")]
pub(crate) struct ChatPage<'a> {
    /// The frame: asset version, language, switcher.
    pub frame: Frame<'a>,
    /// A text chat (`/chat?mode=text`): no videos, no camera, chat only.
    pub text: bool,
    /// "Blur until safe": the unsafe-class probability at which the stranger's video stays
    /// blurred (`--unsafe-threshold`), read by `static/safety.js`.
    pub unsafe_threshold: f32,
}

/// A styled error page (404 and friends).
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage<'a> {
    /// The frame: asset version, language, switcher.
    pub frame: Frame<'a>,
    /// The HTTP status, shown large.
    pub status: u16,
    /// What went wrong, in the page's language.
    pub title: String,
    /// What to do about it, in the page's language.
    pub message: String,
}

/// A file under `static/`, compiled in.
#[derive(Debug)]
pub(crate) struct Asset {
    /// Its name under `/static/`.
    pub name: &'static str,
    pub body: &'static [u8],
    pub content_type: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/static/", $name)),
            content_type: $type,
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const WASM: &str = "application/wasm";
const TEXT: &str = "text/plain; charset=utf-8";

/// Every static file the pages use.
pub(crate) static ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("landing.js", JS),
    asset!("app.js", JS),
    asset!("session.js", JS),
    asset!("display.js", JS),
    asset!("notice.js", JS),
    asset!("ban.js", JS),
    asset!("call-state.js", JS),
    asset!("words.js", JS),
    asset!("chat.js", JS),
    asset!("media.js", JS),
    asset!("view.js", JS),
    asset!("prefs.js", JS),
    asset!("call.js", JS),
    asset!("warm.js", JS),
    asset!("signaling.js", JS),
    asset!("gate.js", JS),
    asset!("pow.js", JS),
    asset!("pow-worker.js", JS),
    asset!("i18n.js", JS),
    asset!("lang.js", JS),
    asset!("safety.js", JS),
    asset!("classifier.js", JS),
    // Loaded only by the worker, when a call starts: the landing page never touches them.
    asset!("safety-worker.js", JS),
    // Vendored by scripts/vendor-js.sh, pinned and checksummed (static/vendor/README.md).
    asset!("vendor/tfjs/tf.min.js", JS),
    asset!("vendor/tfjs/tf-backend-wasm.min.js", JS),
    asset!("vendor/tfjs/tfjs-backend-wasm.wasm", WASM),
    asset!("vendor/tfjs/tfjs-backend-wasm-simd.wasm", WASM),
    asset!("vendor/tfjs/LICENSE", TEXT),
    asset!("vendor/nsfwjs/mobilenet_v2_mid/model.min.js", JS),
    asset!("vendor/nsfwjs/mobilenet_v2_mid/group1-shard1of2.min.js", JS),
    asset!("vendor/nsfwjs/mobilenet_v2_mid/group1-shard2of2.min.js", JS),
    asset!("vendor/nsfwjs/LICENSE", TEXT),
    asset!("favicon.svg", "image/svg+xml"),
];

/// Finds a static file by name.
pub(crate) fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// A short hash of every asset's content: changes whenever any asset does.
pub(crate) fn version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        // FNV-1a: stable across builds and platforms, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for a in ASSETS {
            for b in a.name.bytes().chain(a.body.iter().copied()) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{:012x}", h >> 16)
    });
    &VERSION
}
