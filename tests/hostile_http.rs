//! Hostile HTTP before the upgrade, and what every page and private route answers: idle and
//! slow connections are closed, heads are capped, h2c is refused, connections count against
//! the caps before they upgrade, the client is who the trusted proxy says, pages carry their
//! security headers, and `/metrics` and the live counts are private.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{PATIENCE, TestServer, http_get, public_get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Reads until the server closes the connection (or `PATIENCE` runs out: a failure).
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection");
    got
}

/// The status of a WebSocket handshake with these extra headers, or 101.
async fn upgrade_status(server: &TestServer, headers: &[(&str, &str)]) -> u16 {
    let mut req = server.ws_url().into_client_request().unwrap();
    for (name, value) in headers {
        let name: http::HeaderName = name.parse().unwrap();
        req.headers_mut().append(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_ws, res)) => res.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
        Err(e) => panic!("handshake failed without an HTTP answer: {e}"),
    }
}

/// A connection that never sends a byte is closed after the idle timeout.
#[tokio::test]
async fn an_idle_connection_is_closed() {
    let server = TestServer::start(&["--idle-timeout", "200ms"]).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    read_until_closed(&mut idle).await;
}

/// A kept-alive connection that asked for one page and then says nothing is closed too.
#[tokio::test]
async fn a_kept_alive_connection_nobody_uses_is_closed() {
    let server = TestServer::start(&["--idle-timeout", "200ms"]).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut conn).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "answered first");
}

/// Headers trickled in a line at a time, each well within the idle timeout, are cut off at
/// the header-read timeout: the connection does not live as long as the client likes.
#[tokio::test]
async fn slow_headers_are_cut_off() {
    let server = TestServer::start(&["--header-timeout", "300ms", "--idle-timeout", "10s"]).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    // At most 5 s of trickling (50 lines); the server must give up long before.
    let mut closed = false;
    for n in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let line = format!("x-slow-{n}: a\r\n");
        if conn.write_all(line.as_bytes()).await.is_err() {
            closed = true;
            break;
        }
        let mut byte = [0u8; 1];
        if let Ok(read) = tokio::time::timeout(Duration::ZERO, conn.read(&mut byte)).await {
            // EOF, a reset, or an error response: the server has given up on us.
            let _ = read;
            closed = true;
            break;
        }
    }
    assert!(closed, "a head trickled for 5 s is still being read");
}

/// A request head over the cap gets 431, whatever it holds; a normal one is answered.
#[tokio::test]
async fn an_oversized_head_gets_431() {
    let server = TestServer::start(&[]).await;
    let big = "a".repeat(16 * 1024);
    let (status, _, _) = common::http_request(
        server.addr,
        &format!("GET / HTTP/1.1\r\nHost: x\r\nx-big: {big}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 431);
    let (status, _, _) = public_get(server.addr, "/").await;
    assert_eq!(status, 200);
}

/// HTTP/2 without TLS (h2c, by its connection preface) is not spoken.
#[tokio::test]
async fn h2c_is_refused() {
    let server = TestServer::start(&[]).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    // The preface, then an empty SETTINGS frame.
    conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let answer = read_until_closed(&mut conn).await;
    // An HTTP/2 server answers with its own SETTINGS frame (type 4 at byte 3).
    assert!(
        answer.len() < 9 || answer[3] != 4 || answer.starts_with(b"HTTP/1.1"),
        "the server spoke HTTP/2: {answer:?}"
    );
}

/// Connections that never upgrade take places in the per-IP cap: with them open, the same
/// address gets 429 for a WebSocket; once they are gone it gets one.
#[tokio::test]
async fn connections_not_yet_upgraded_count_per_ip() {
    let server = TestServer::start(&["--max-pending-per-ip", "3"]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // The places are taken when the server accepts; make sure it has, with a request on
    // the last one (answered, so accepted, and the others came before it).
    held[2]
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    held[2].read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    assert_eq!(upgrade_status(&server, &[]).await, 429);
    drop(held);
    let mut status = 0;
    for _ in 0..50 {
        status = upgrade_status(&server, &[]).await;
        if status == 101 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 101, "a place is free once those connections closed");
}

/// A browser opens several connections to load a page, and several people share an
/// address: twenty page loads in flight from one address leave its WebSockets their own
/// places (they are capped apart, by `--max-per-ip`).
#[tokio::test]
async fn page_loads_from_one_address_leave_room_for_its_websockets() {
    let server = TestServer::start(&["--max-per-ip", "2"]).await;
    let mut loading = Vec::new();
    for _ in 0..20 {
        loading.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let last = loading.last_mut().unwrap();
    last.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    last.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200", "the 20th connection is served");
    assert_eq!(upgrade_status(&server, &[]).await, 101);
    assert_eq!(upgrade_status(&server, &[]).await, 101);
}

/// Connections that never upgrade take places in the server-wide cap too.
#[tokio::test]
async fn connections_not_yet_upgraded_count_in_the_global_cap() {
    let server = TestServer::start(&["--max-connections", "2"]).await;
    let _idle = [
        TcpStream::connect(server.addr).await.unwrap(),
        TcpStream::connect(server.addr).await.unwrap(),
    ];
    assert_eq!(upgrade_status(&server, &[]).await, 503);
}

/// Behind a proxy, a WebSocket request whose client-address header is missing or not an
/// address is refused: it could be neither capped nor banned.
#[tokio::test]
async fn without_a_usable_client_address_header_the_upgrade_is_refused() {
    let server = TestServer::start(&["--client-ip-header", "fly-client-ip"]).await;
    assert_eq!(upgrade_status(&server, &[]).await, 400);
    assert_eq!(
        upgrade_status(&server, &[("fly-client-ip", "not an address")]).await,
        400
    );
    assert_eq!(
        upgrade_status(&server, &[("fly-client-ip", "203.0.113.9")]).await,
        101
    );
}

/// `X-Forwarded-For` is read from the right, where the proxy appended what it saw: a client
/// writing its own left-most address does not escape the per-IP cap.
#[tokio::test]
async fn the_right_most_forwarded_address_is_the_client() {
    let server =
        TestServer::start(&["--client-ip-header", "x-forwarded-for", "--max-per-ip", "1"]).await;
    let mut req = server.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("x-forwarded-for", "1.1.1.1, 203.0.113.9".parse().unwrap());
    let _held = tokio_tungstenite::connect_async(req).await.unwrap();
    let forged = [("x-forwarded-for", "2.2.2.2, 203.0.113.9")];
    assert_eq!(upgrade_status(&server, &forged).await, 429);
    let other = [("x-forwarded-for", "2.2.2.2, 203.0.113.10")];
    assert_eq!(upgrade_status(&server, &other).await, 101);
}

/// An IPv6 client is its /64: other addresses of the same /64 share its per-IP places, the
/// next /64 does not.
#[tokio::test]
async fn an_ipv6_client_is_its_64() {
    let server =
        TestServer::start(&["--client-ip-header", "fly-client-ip", "--max-per-ip", "1"]).await;
    let mut req = server.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("fly-client-ip", "2001:db8:1:2::1".parse().unwrap());
    let _held = tokio_tungstenite::connect_async(req).await.unwrap();
    let same = [("fly-client-ip", "2001:db8:1:2:dead:beef:0:7")];
    assert_eq!(upgrade_status(&server, &same).await, 429);
    let next = [("fly-client-ip", "2001:db8:1:3::1")];
    assert_eq!(upgrade_status(&server, &next).await, 101);
}

/// The header value of `name` in a raw response head, lower-cased name.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Every page forbids framing and inline script, sniffing and referrers, and allows camera
/// and microphone for this origin only; without an https public URL there is no HSTS.
#[tokio::test]
async fn pages_send_security_headers() {
    let server = TestServer::start(&[]).await;
    for path in [
        "/",
        "/chat",
        "/nowhere",
        "/static/app.js",
        "/static/safety-worker.js",
    ] {
        let (_, head, _) = public_get(server.addr, path).await;
        let csp = header(&head, "content-security-policy")
            .unwrap_or_else(|| panic!("{path} has no CSP:\n{head}"));
        for rule in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            // The proof of work is solved in a worker of this origin, and only of it.
            "worker-src 'self'",
        ] {
            assert!(csp.contains(rule), "{path}: CSP lacks {rule}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        // The safety check's worker may compile WebAssembly, never evaluate strings.
        assert!(!csp.contains("'unsafe-eval'"), "{path}: {csp}");
        assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&head, "referrer-policy"), Some("no-referrer"));
        assert_eq!(
            header(&head, "permissions-policy"),
            Some("camera=(self), microphone=(self)")
        );
        assert_eq!(header(&head, "strict-transport-security"), None);
    }
}

/// What the CSP allows is what the pages use: no inline script, no inline style, no
/// `style=` attributes, no inline event handlers.
#[tokio::test]
async fn pages_have_nothing_inline_that_the_policy_would_block() {
    let server = TestServer::start(&[]).await;
    for path in ["/", "/chat", "/nowhere"] {
        let (_, _, body) = public_get(server.addr, path).await;
        let mut rest = body.as_str();
        while let Some(at) = rest.find("<script") {
            let tag = &rest[at..at + rest[at..].find('>').unwrap()];
            // A JSON data block (the client's words) is never run, and the policy allows it.
            let data = tag.contains(" type=\"application/json\"");
            assert!(tag.contains(" src=") || data, "{path}: inline script {tag}");
            rest = &rest[at + tag.len()..];
        }
        assert!(!body.contains("<style"), "{path}: inline <style>");
        assert!(!body.contains(" style="), "{path}: style attribute");
        assert!(!body.contains(" onclick="), "{path}: inline handler");
    }
}

/// With an https public URL, pages send HSTS and the CSP names the WebSocket URL.
#[tokio::test]
async fn an_https_site_sends_hsts() {
    let server = TestServer::start(&["--public-url", "https://strangers.example"]).await;
    let (_, head, _) = public_get(server.addr, "/").await;
    assert!(
        header(&head, "strict-transport-security").is_some_and(|v| v.contains("max-age=")),
        "{head}"
    );
    let csp = header(&head, "content-security-policy").unwrap();
    assert!(csp.contains("wss://strangers.example"), "{csp}");
}

/// `/metrics` answers only with the bearer token, and the public `/healthz` tells no counts.
#[tokio::test]
async fn metrics_and_counts_are_private() {
    let server = TestServer::start(&[]).await;
    let _user = server.client().await;
    let (status, _, _) = public_get(server.addr, "/metrics").await;
    assert_eq!(status, 404, "no metrics without the token");
    let (status, _, _) = common::http_request(
        server.addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 404, "no metrics with a wrong token");
    let (status, _, text) = http_get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains("strangers_"), "{text}");

    let (status, _, body) = public_get(server.addr, "/healthz").await;
    assert_eq!(status, 200);
    let public: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(public["status"], "ok");
    for count in ["online", "waiting", "rooms", "matches"] {
        assert!(public.get(count).is_none(), "public healthz shows {count}");
    }
    assert_eq!(server.health().await["online"], 1, "with the token it does");
}

/// A free loopback port (bound, read and released).
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// `--metrics-listen` serves `/metrics` and the full `/healthz` on an address of its own,
/// without a token, and nothing else there.
#[tokio::test]
async fn metrics_can_have_a_listen_address_of_their_own() {
    let private = free_port();
    let server = TestServer::start(&["--metrics-listen", &private.to_string()]).await;
    let _user = server.client().await;
    let mut status = 0;
    let mut text = String::new();
    for _ in 0..50 {
        if TcpStream::connect(private).await.is_ok() {
            (status, _, text) = public_get(private, "/metrics").await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
    assert!(text.contains("strangers_"));
    let (_, _, body) = public_get(private, "/healthz").await;
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["online"], 1);
    let (status, _, _) = public_get(private, "/").await;
    assert_eq!(status, 404, "pages are not served there");
}
