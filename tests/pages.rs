//! The pages a visitor loads: they render, every asset they reference is served with the
//! right type and cache headers, and mistakes get a styled error page.

mod common;

use common::{TestServer, http_get, http_request};

/// Every `/static/...` URL in `src=` or `href=` attributes of a page.
fn asset_urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let url = &rest[..rest.find('"').unwrap()];
            if url.starts_with("/static/") {
                urls.push(url.replace("&amp;", "&"));
            }
        }
    }
    urls
}

/// The landing page says what this is, how many are online, and has a Start button; the
/// chat page has the videos and the controls. Every asset either references is served.
#[tokio::test]
async fn pages_render_and_their_assets_are_served() {
    let server = TestServer::start(&[]).await;
    let (status, head, landing) = http_get(server.addr, "/").await;
    assert_eq!(status, 200);
    assert!(head.to_lowercase().contains("content-type: text/html"));
    assert!(
        landing.contains("online-count"),
        "landing shows the online count"
    );
    assert!(landing.contains(">Start<"), "landing has a Start button");
    assert!(landing.contains("18"), "landing carries the 18+ note");

    let (status, _, chat) = http_get(server.addr, "/chat").await;
    assert_eq!(status, 200);
    for id in [
        "remote-video",
        "local-video",
        "start",
        "next",
        "stop",
        "chat-log",
        "typing",
    ] {
        assert!(
            chat.contains(&format!("id=\"{id}\"")),
            "chat page has #{id}"
        );
    }

    let mut urls = asset_urls(&landing);
    urls.extend(asset_urls(&chat));
    assert!(
        urls.iter().any(|u| u.contains("app.js")),
        "chat page loads the client"
    );
    for url in urls {
        let (status, head, body) = http_get(server.addr, &url).await;
        assert_eq!(status, 200, "{url}");
        assert!(!body.is_empty(), "{url} has content");
        let head = head.to_lowercase();
        // A versioned URL never changes: cached for a year. A plain one (a module as its
        // import names it) is revalidated.
        let cache = if url.contains("?v=") {
            "cache-control: public, max-age=31536000, immutable"
        } else {
            "cache-control: no-cache"
        };
        assert!(head.contains(cache), "{url} has {cache}:\n{head}");
        assert!(head.contains("etag:"), "{url} has an ETag");
    }
}

/// JavaScript modules imported by other modules (without a version) are served too, and
/// revalidated rather than cached blindly (so a new build never runs against an old
/// module); the chat page preloads each at the URL its import asks for.
#[tokio::test]
async fn modules_imported_by_the_client_are_served() {
    let server = TestServer::start(&[]).await;
    let (status, _, app) = http_get(server.addr, "/static/app.js").await;
    assert_eq!(status, 200);
    let (_, _, chat) = http_get(server.addr, "/chat").await;
    for import in app.split("from ").skip(1) {
        let quoted = import.trim_start();
        let Some(path) = quoted
            .strip_prefix("'./")
            .or_else(|| quoted.strip_prefix("\"./"))
        else {
            continue;
        };
        let name = &path[..path.find(['\'', '"']).unwrap()];
        let name = name.split('?').next().unwrap();
        let (status, head, _) = http_get(server.addr, &format!("/static/{name}")).await;
        assert_eq!(status, 200, "imported module {name}");
        assert!(
            head.to_lowercase().contains("text/javascript"),
            "{name}: {head}"
        );
        let plain = format!("/static/{name}");
        assert!(
            chat.contains(&format!("<link rel=\"modulepreload\" href=\"{plain}\">")),
            "the chat page preloads {plain}"
        );
    }
    let (_, head, _) = http_get(server.addr, "/static/app.js").await;
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an ETag");
    let (status, _, body) = http_request(
        server.addr,
        &format!(
            "GET /static/app.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (304, ""),
        "an unchanged asset is not resent"
    );
}

/// The safety check ("Blur until safe"): the worker and the vendored model and libraries it
/// loads are served with their types and, at versioned URLs, cached for a year; the landing
/// page names none of them (it stays light); the call page carries the operator's threshold.
#[tokio::test]
async fn the_safety_check_is_served_for_calls_only() {
    let server = TestServer::start(&["--unsafe-threshold", "0.25"]).await;
    let (_, _, landing) = http_get(server.addr, "/").await;
    for heavy in ["safety", "classifier", "vendor"] {
        assert!(
            !landing.contains(heavy),
            "the landing page loads no {heavy}"
        );
    }
    let (_, _, chat) = http_get(server.addr, "/chat").await;
    assert!(
        chat.contains("data-unsafe-threshold=\"0.25\""),
        "the call page carries --unsafe-threshold"
    );
    assert!(
        !chat.contains("vendor/"),
        "the model is not loaded with the page"
    );
    let v = chat
        .split("/static/app.js?v=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a versioned app.js");
    for (file, kind) in [
        ("safety-worker.js", "text/javascript"),
        ("vendor/tfjs/tf.min.js", "text/javascript"),
        ("vendor/tfjs/tf-backend-wasm.min.js", "text/javascript"),
        (
            "vendor/tfjs/tfjs-backend-wasm-simd.wasm",
            "application/wasm",
        ),
        ("vendor/tfjs/tfjs-backend-wasm.wasm", "application/wasm"),
        (
            "vendor/nsfwjs/mobilenet_v2_mid/model.min.js",
            "text/javascript",
        ),
        (
            "vendor/nsfwjs/mobilenet_v2_mid/group1-shard1of2.min.js",
            "text/javascript",
        ),
        (
            "vendor/nsfwjs/mobilenet_v2_mid/group1-shard2of2.min.js",
            "text/javascript",
        ),
        ("vendor/nsfwjs/LICENSE", "text/plain"),
        ("vendor/tfjs/LICENSE", "text/plain"),
    ] {
        let url = format!("/static/{file}?v={v}");
        let (status, head, body) = http_get(server.addr, &url).await;
        let head = head.to_lowercase();
        assert_eq!(status, 200, "{url}");
        assert!(!body.is_empty(), "{url} has content");
        assert!(
            head.contains(&format!("content-type: {kind}")),
            "{url}:\n{head}"
        );
        assert!(
            head.contains("cache-control: public, max-age=31536000, immutable"),
            "{url} is cached for a year:\n{head}"
        );
    }
}

/// A wrong address gets a styled 404 page with a way home, not a bare text error.
#[tokio::test]
async fn unknown_pages_get_a_styled_404() {
    let server = TestServer::start(&[]).await;
    for path in [
        "/nope",
        "/static/missing.js",
        "/chat/extra",
        "/static/vendor/missing.js",
        "/static/vendor/tfjs/../../app.js",
    ] {
        let (status, head, body) = http_get(server.addr, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(head.to_lowercase().contains("text/html"), "{path}");
        assert!(
            body.contains("/static/style.css"),
            "{path}: the error page is styled"
        );
        assert!(body.contains("href=\"/\""), "{path}: links home");
    }
}

/// `/ws` opened as a plain page says it is for WebSockets only, with 400.
#[tokio::test]
async fn websocket_endpoint_refuses_plain_requests() {
    let server = TestServer::start(&[]).await;
    let (status, _, body) = http_get(server.addr, "/ws").await;
    assert_eq!(status, 400);
    assert!(body.contains("WebSocket"), "{body}");
    let (status, _, _) = http_request(
        server.addr,
        "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405);
}

/// `/healthz` answers for load balancers with the live counts.
#[tokio::test]
async fn healthz_reports_ok_and_counts() {
    let server = TestServer::start(&[]).await;
    let _a = server.client().await;
    let health = server.health().await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["online"], 1);
}
