//! Every word the site shows comes from the catalogs: each message key the templates, the
//! browser client and the server use is in the English catalog (which the other languages
//! must match key for key, a unit test in `src/i18n.rs` says), every key English has is used
//! somewhere, and the client looks its words up by literal keys only, so this check sees all
//! of them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The repository root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files under `dir` (recursively) whose names end in `ext`, sorted; vendored
/// libraries (`vendor/`) are not ours and show no words.
fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![root().join(dir)];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                if !path.ends_with("vendor") {
                    todo.push(path);
                }
            } else if path.to_string_lossy().ends_with(ext) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The text of `path`; for Rust source, without its unit tests (which make up keys on
/// purpose).
fn source(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) if path.extension().is_some_and(|e| e == "rs") => text[..at].to_string(),
        _ => text,
    }
}

/// Whether `c` can be part of an identifier (JavaScript's or Rust's).
fn ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The message keys `text` passes literally to a lookup (`t("…")`, `t('…')`, and in Rust
/// `.plural("…"` and `.format("…"`), with what comes before each call.
fn lookups(text: &str) -> Vec<(String, char)> {
    let mut keys = Vec::new();
    for name in ["t(", "plural(", "format("] {
        let mut from = 0;
        while let Some(at) = text[from..].find(name) {
            let start = from + at;
            from = start + name.len();
            let before = text[..start].chars().next_back().unwrap_or(' ');
            if ident(before) {
                continue; // part of a longer name: `set(`, `Intl.format(`…
            }
            let rest = text[from..].trim_start();
            let Some(quote) = rest.chars().next().filter(|c| matches!(c, '"' | '\'')) else {
                continue;
            };
            let body = &rest[1..];
            if let Some(end) = body.find(quote) {
                keys.push((body[..end].to_string(), before));
            }
        }
    }
    keys
}

/// The keys of the English catalog.
fn english_keys() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("i18n/en.json")).expect("i18n/en.json");
    let catalog: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).expect("i18n/en.json is a JSON object");
    catalog.keys().cloned().collect()
}

/// Every lookup of a message by key in the templates, the client and the server: the file
/// and the key.
fn used_keys() -> Vec<(String, String)> {
    let mut used = Vec::new();
    for path in [
        files("templates", ".html"),
        files("static", ".js"),
        files("src", ".rs"),
    ]
    .concat()
    {
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        let text = source(&path);
        let js = name.ends_with(".js");
        for (key, before) in lookups(&text) {
            // `format("…")` and `t("…")` in Rust are only ours as methods (`c.t(`), and a
            // format string is no key.
            if !js && !name.ends_with(".html") && before != '.' {
                continue;
            }
            if key.contains(['{', ' ']) {
                continue;
            }
            used.push((name.clone(), key));
        }
    }
    used
}

#[test]
fn every_key_the_pages_and_the_client_use_is_in_english() {
    let english = english_keys();
    let used = used_keys();
    assert!(
        used.iter().any(|(f, _)| f.starts_with("static/"))
            && used.iter().any(|(f, _)| f.starts_with("templates/")),
        "the lookups were found: {used:?}"
    );
    let missing: Vec<_> = used.iter().filter(|(_, k)| !english.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "used but not in i18n/en.json (add them to every catalog): {missing:?}"
    );
}

#[test]
fn every_english_key_is_used() {
    let used: BTreeSet<String> = used_keys().into_iter().map(|(_, k)| k).collect();
    let unused: Vec<_> = english_keys()
        .into_iter()
        .filter(|k| !used.contains(k))
        .collect();
    assert!(
        unused.is_empty(),
        "in i18n/en.json but used nowhere (remove them from every catalog): {unused:?}"
    );
}

/// `t(` in the client is always called with a literal key: a computed one would hide from
/// the checks above.
#[test]
fn the_client_looks_words_up_by_literal_keys_only() {
    for path in files("static", ".js") {
        if path.ends_with("i18n.js") {
            continue; // where t is defined
        }
        let text = source(&path);
        let mut from = 0;
        while let Some(at) = text[from..].find("t(") {
            let start = from + at;
            from = start + 2;
            let before = text[..start].chars().next_back().unwrap_or(' ');
            if ident(before) || before == '.' {
                continue;
            }
            let rest = text[from..].trim_start();
            assert!(
                rest.starts_with('\'') || rest.starts_with('"'),
                "{}: t( without a literal key: {}",
                path.display(),
                &text[start..(start + 60).min(text.len())]
            );
        }
    }
}

/// The client's words reach it only through the page's catalog, which holds `client.*`.
#[test]
fn the_client_uses_client_keys_only() {
    for (file, key) in used_keys() {
        if file.starts_with("static/") {
            assert!(
                key.starts_with("client."),
                "{file}: {key} is not a client. key"
            );
        }
    }
}
