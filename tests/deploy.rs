//! The deployment files agree with the code: Fly.io sends traffic and health checks where
//! the server listens and answers, waits long enough for the drain, and caps connections
//! where the server does.

mod common;

use std::time::Duration;

use common::{TestServer, http_get};
use strangers::config::parse_duration;

fn fly() -> toml::Table {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fly.toml")).unwrap();
    text.parse().expect("fly.toml is valid TOML")
}

fn dockerfile() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap()
}

fn env<'a>(fly: &'a toml::Table, key: &str) -> &'a str {
    fly["env"][key]
        .as_str()
        .unwrap_or_else(|| panic!("fly.toml [env] sets {key}"))
}

#[test]
fn fly_routes_to_the_port_the_server_listens_on() {
    let fly = fly();
    let listen = env(&fly, "STRANGERS_LISTEN");
    assert!(
        listen.starts_with("0.0.0.0:"),
        "Fly's proxy needs a non-loopback address"
    );
    let port: i64 = listen.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(
        fly["http_service"]["internal_port"].as_integer(),
        Some(port)
    );
    assert_eq!(
        fly["http_service"]["force_https"].as_bool(),
        Some(true),
        "camera needs https"
    );

    let docker = dockerfile();
    assert!(
        docker.contains(&format!("EXPOSE {port}")),
        "Dockerfile exposes {port}"
    );
    assert!(docker.contains(&format!("STRANGERS_LISTEN=0.0.0.0:{port}")));
}

#[test]
fn fly_waits_longer_than_the_drain() {
    let fly = fly();
    let drain = parse_duration(env(&fly, "STRANGERS_DRAIN")).unwrap();
    let kill_timeout = parse_duration(fly["kill_timeout"].as_str().unwrap()).unwrap();
    assert_eq!(
        fly["kill_signal"].as_str(),
        Some("SIGTERM"),
        "the signal we drain on"
    );
    assert!(
        kill_timeout >= drain + Duration::from_secs(2),
        "kill_timeout {kill_timeout:?} leaves room for a {drain:?} drain"
    );
}

#[test]
fn fly_caps_connections_where_the_server_does() {
    let fly = fly();
    let cap: i64 = env(&fly, "STRANGERS_MAX_CONNECTIONS").parse().unwrap();
    let concurrency = &fly["http_service"]["concurrency"];
    assert_eq!(concurrency["type"].as_str(), Some("connections"));
    assert_eq!(concurrency["hard_limit"].as_integer(), Some(cap));
    assert!(concurrency["soft_limit"].as_integer().unwrap() <= cap);
}

#[tokio::test]
async fn fly_health_check_path_is_served() {
    let fly = fly();
    let checks = fly["http_service"]["checks"].as_array().unwrap();
    let server = TestServer::start(&[]).await;
    for check in checks {
        let path = check["path"].as_str().unwrap();
        let (status, _, _) = http_get(server.addr, path).await;
        assert_eq!(status, 200, "health check {path}");
    }
}

#[test]
fn the_image_runs_as_a_non_root_user_and_builds_in_stages() {
    let docker = dockerfile();
    let runtime = docker.rsplit("\nFROM ").next().unwrap();
    assert!(runtime.contains("\nUSER "), "the runtime stage drops root");
    assert!(!runtime.contains("USER root"));
    assert!(
        docker.contains("cargo chef cook"),
        "dependencies are cached in their own layer"
    );
    assert!(docker.matches("\nFROM ").count() >= 2, "multi-stage");
}

/// The coturn recipe relays to no address of this machine, of a private or carrier-grade NAT
/// network, or link-local (cloud metadata), IPv4 or IPv6, and turns off what WebRTC does not
/// use.
#[test]
fn the_coturn_recipe_denies_every_internal_peer() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/deploy.md")).unwrap();
    for flag in [
        "--no-multicast-peers",
        "--no-tcp-relay",
        "--no-rfc5780",
        "--denied-peer-ip=0.0.0.0-0.255.255.255",
        "--denied-peer-ip=10.0.0.0-10.255.255.255",
        "--denied-peer-ip=100.64.0.0-100.127.255.255",
        "--denied-peer-ip=127.0.0.0-127.255.255.255",
        "--denied-peer-ip=169.254.0.0-169.254.255.255",
        "--denied-peer-ip=172.16.0.0-172.31.255.255",
        "--denied-peer-ip=192.168.0.0-192.168.255.255",
        "--denied-peer-ip=::1",
        "--denied-peer-ip=fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "--denied-peer-ip=fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ] {
        assert!(
            doc.contains(flag),
            "docs/deploy.md's coturn recipe lacks {flag}"
        );
    }
}
