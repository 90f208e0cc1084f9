//! The pages a visitor loads: they render, every asset they reference is served with the
//! right type and cache headers, and mistakes get a styled error page.

mod common;

use common::{TestServer, http_get, http_request};
use serde_json::json;

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

/// The landing page says how many are on video and how many on text, in its language: a
/// user waiting in text counts there, one who has only connected counts in the total.
#[tokio::test]
async fn the_landing_page_counts_each_mode() {
    let server = TestServer::start(&[]).await;
    let mut idle = server.client().await;
    let mut text = server.client().await;
    text.send(json!({"type": "join", "mode": "text"})).await;
    text.recv_type("waiting").await;
    // The page shows the count as last told to any session: once one has heard it, so
    // does the page.
    idle.recv_online(json!({"count": 2, "modes": {"video": 0, "text": 1}}))
        .await;
    let (_, _, landing) = http_get(server.addr, "/").await;
    assert!(landing.contains("2 online now"), "{landing}");
    assert!(landing.contains("0 on video · 1 on text"), "{landing}");
    let (_, _, landing) = get_with(&server, "/", "Accept-Language: es\r\n").await;
    assert!(landing.contains("0 en vídeo · 1 en texto"), "{landing}");
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

/// `GET path` with extra header lines (each ending in `\r\n`).
async fn get_with(server: &TestServer, path: &str, headers: &str) -> (u16, String, String) {
    http_request(
        server.addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"),
    )
    .await
}

/// A browser that asks for Spanish gets the landing page in Spanish, says so in
/// `<html lang>`, and the chat page's client gets the Spanish words; one that asks for nothing we
/// speak, or for nothing, gets English.
#[tokio::test]
async fn the_landing_page_speaks_the_language_the_browser_asks_for() {
    let server = TestServer::start(&[]).await;
    let (status, head, body) = get_with(&server, "/", "Accept-Language: es-MX,es;q=0.9\r\n").await;
    assert_eq!(status, 200);
    assert!(body.contains("<html lang=\"es\">"), "{body}");
    assert!(body.contains(">Empezar<"), "the Start button is in Spanish");
    assert!(body.contains("Habla con un desconocido al azar"), "{body}");
    assert!(!body.contains(">Start<"), "no English button left");
    let (_, _, chat) = get_with(&server, "/chat", "Accept-Language: es-MX,es;q=0.9\r\n").await;
    assert!(
        chat.contains("\"client.looking\":\"Buscando a un desconocido…\""),
        "the client's catalog is Spanish"
    );
    let head = head.to_lowercase();
    assert!(head.contains("content-language: es"), "{head}");
    assert!(head.contains("vary: accept-language, cookie"), "{head}");

    let (_, _, body) = get_with(&server, "/", "Accept-Language: de-CH;q=0.4, fr;q=0.8\r\n").await;
    assert!(body.contains("<html lang=\"fr\">") && body.contains(">Démarrer<"));

    for asked in [
        "",
        "Accept-Language: ja, zh;q=0.5\r\n",
        "Accept-Language: en-US,en;q=0.9\r\n",
    ] {
        let (_, _, body) = get_with(&server, "/", asked).await;
        assert!(body.contains("<html lang=\"en\">"), "{asked:?}");
        assert!(body.contains(">Start<"), "{asked:?}");
    }
}

/// The switcher's choice (`?lang=`) is the page's language and is remembered in a cookie,
/// which wins over `Accept-Language` on later visits, on every page.
#[tokio::test]
async fn the_switcher_choice_is_remembered_and_overrides_the_browser() {
    let server = TestServer::start(&[]).await;
    let (status, head, body) = get_with(&server, "/?lang=de", "Accept-Language: es\r\n").await;
    assert_eq!(status, 200);
    assert!(body.contains("<html lang=\"de\">"), "{body}");
    assert!(body.contains("<option value=\"de\" lang=\"de\" selected>Deutsch</option>"));
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("the choice is remembered");
    assert!(
        cookie.starts_with("lang=de;") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(cookie.contains("Max-Age=31536000"), "{cookie}");

    let (_, head, chat) = get_with(
        &server,
        "/chat",
        "Accept-Language: es\r\nCookie: lang=de\r\n",
    )
    .await;
    assert!(
        chat.contains("<html lang=\"de\">"),
        "the cookie wins over Accept-Language"
    );
    assert!(
        chat.contains(">Weiter<") && chat.contains(">Stopp<"),
        "{chat}"
    );
    assert!(
        !head.to_lowercase().contains("set-cookie"),
        "only a new choice sets it"
    );
    let (status, _, missing) = get_with(&server, "/nope", "Cookie: theme=dark; lang=pt\r\n").await;
    assert_eq!(status, 404);
    assert!(missing.contains("<html lang=\"pt\">") && missing.contains("Página não encontrada"));
}

/// A garbage `Accept-Language`, cookie or `?lang=` gets English, and the page is served as
/// usual.
#[tokio::test]
async fn garbage_language_headers_get_english() {
    let server = TestServer::start(&[]).await;
    for (path, headers) in [
        ("/", "Accept-Language: ;;q=x,,*;q=2\r\n"),
        ("/", "Accept-Language: \u{e9}s, \u{ff}de\r\n"),
        ("/", "Cookie: lang=<script>; lang\r\n"),
        ("/?lang=xx", "Cookie: =;;=\r\n"),
        ("/chat?lang=%00&lang", "Accept-Language: *\r\n"),
    ] {
        let (status, head, body) = get_with(&server, path, headers).await;
        assert_eq!(status, 200, "{path} {headers:?}");
        assert!(body.contains("<html lang=\"en\">"), "{path} {headers:?}");
        assert!(
            !head.to_lowercase().contains("set-cookie"),
            "{path} {headers:?}"
        );
    }
}

/// A refused WebSocket upgrade and a connection refused at the door (the server is full)
/// get their error pages in the language the request asks for.
#[tokio::test]
async fn refusals_speak_the_request_language() {
    let server = TestServer::start(&["--max-connections", "2"]).await;
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade, close\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let (status, _, body) = get_with(
        &server,
        "/ws",
        &format!("{upgrade}Origin: http://elsewhere.example\r\nAccept-Language: de\r\n"),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body.contains("<html lang=\"de\">") && body.contains("Nicht erlaubt"),
        "{body}"
    );

    // Two connections that say nothing fill the server; the next is turned away at once.
    let _idle = [
        tokio::net::TcpStream::connect(server.addr).await.unwrap(),
        tokio::net::TcpStream::connect(server.addr).await.unwrap(),
    ];
    let (status, _, body) = get_with(&server, "/", "Accept-Language: es\r\n").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("<html lang=\"es\">") && body.contains("Demasiada gente"),
        "{body}"
    );
}

/// The text chat page (`?mode=text`) in the page's language: its own title, no video
/// elements, the switch link in that language; the switcher keeps `mode=text`; and the
/// language to be matched in (`?speak=`) is not the page's language.
#[tokio::test]
async fn the_text_chat_page_speaks_the_page_language() {
    let server = TestServer::start(&[]).await;
    let (status, _, text) = get_with(&server, "/chat?mode=text", "Accept-Language: de\r\n").await;
    assert_eq!(status, 200);
    assert!(text.contains("<html lang=\"de\">"), "{text}");
    assert!(
        text.contains("<title>Textchat · strangers</title>"),
        "{text}"
    );
    assert!(!text.contains("<video"), "no video elements: {text}");
    assert!(text.contains(">Zu Video wechseln<"), "{text}");
    assert!(
        text.contains("<input type=\"hidden\" name=\"mode\" value=\"text\">"),
        "the switcher keeps the text page: {text}"
    );
    let (_, _, video) = get_with(&server, "/chat", "Accept-Language: de\r\n").await;
    assert!(video.contains("<video") && video.contains(">Zu Text wechseln<"));
    assert!(!video.contains("name=\"mode\" value=\"text\""), "{video}");

    let (_, _, landing) = get_with(&server, "/", "Accept-Language: fr\r\n").await;
    assert!(
        landing.contains("<legend>Discuter par</legend>"),
        "{landing}"
    );
    assert!(landing.contains("name=\"speak\""), "{landing}");
    assert!(
        landing.contains("data-no-camera=\"Aucune caméra trouvée"),
        "{landing}"
    );

    let (_, head, chat) = get_with(
        &server,
        "/chat?mode=text&speak=pt&start=1",
        "Accept-Language: es\r\n",
    )
    .await;
    assert!(chat.contains("<html lang=\"es\">"), "{chat}");
    assert!(!head.to_lowercase().contains("set-cookie"), "{head}");
}
