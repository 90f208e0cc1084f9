//! The browser client's logic, tested under node: `tests/js/*.test.mjs` exercise the session
//! state machine (`static/session.js`), the text chat, the camera and microphone fallbacks,
//! the page's preferences and the signaling reconnects with a fake clock and fakes for the
//! browser's objects, no browser and no DOM. This runs them with node's own test runner and
//! fails with its output if any of them fails.
//!
//! Without `node` the test says so loudly and passes on a laptop; in CI (`CI` set) a missing
//! node is a failure, never a silent skip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether we run in CI (`CI` set to anything but empty, `0` or `false`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// `$NODE`, or `node` / `nodejs` on the `PATH`.
fn find_node() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NODE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .flat_map(|dir| ["node", "nodejs"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

/// node, or `None` after a loud notice when it is missing on a developer machine.
fn node_or_skip() -> Option<PathBuf> {
    match find_node() {
        Some(node) => Some(node),
        None if in_ci() => panic!("the client logic tests need node in CI: apt-get install nodejs"),
        None => {
            // Straight to stderr, past the test harness's output capture, so it is seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n********************************************************************\n\
                 SKIPPED client logic tests (no node): install node\n\
                 (apt-get install nodejs)\n\
                 ********************************************************************\n"
            );
            None
        }
    }
}

/// Every `*.test.mjs` under `tests/js`, sorted.
fn test_files(root: &Path) -> Vec<PathBuf> {
    let dir = root.join("tests").join("js");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(".test.mjs")))
        .collect();
    files.sort();
    files
}

/// The number after `# <key> ` in node's TAP summary.
fn summary_count(tap: &str, key: &str) -> Option<u64> {
    let prefix = format!("# {key} ");
    tap.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
}

#[test]
fn client_logic_passes_under_node() {
    let Some(node) = node_or_skip() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = test_files(root);
    assert!(
        !files.is_empty(),
        "no tests/js/*.test.mjs files to run in {}",
        root.display()
    );
    let output = Command::new(&node)
        .current_dir(root)
        .arg("--test")
        .arg("--test-reporter=tap")
        .args(&files)
        .env_remove("NODE_OPTIONS")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", node.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (pass, fail) = (
        summary_count(&stdout, "pass"),
        summary_count(&stdout, "fail"),
    );
    assert!(
        output.status.success() && fail == Some(0) && pass.is_some_and(|n| n > 0),
        "node --test failed ({}; {pass:?} passed, {fail:?} failed):\n{stdout}\n{stderr}",
        output.status
    );
    eprintln!(
        "node ran {} client logic tests from {} files, all passed",
        pass.unwrap_or(0),
        files.len()
    );
}
