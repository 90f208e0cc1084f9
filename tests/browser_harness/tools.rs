//! Finding the browsers and their WebDriver programs, and the rule for when they are
//! missing: a failure in CI, a loud skip on a developer machine.

use std::io::Write as _;
use std::path::PathBuf;

use super::Engine;

/// Where the programs are. Chromium and chromedriver are always there; Firefox and
/// geckodriver only when [`firefox_tools_or_skip`] found them.
#[derive(Clone, Debug)]
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    pub firefox: Option<PathBuf>,
    pub geckodriver: Option<PathBuf>,
}

impl Tools {
    /// The browser and its driver for `engine`; panics for Firefox on Tools found without it.
    pub fn programs(&self, engine: Engine) -> (&PathBuf, &PathBuf) {
        match engine {
            Engine::Chromium => (&self.chromium, &self.chromedriver),
            Engine::Firefox => match (&self.firefox, &self.geckodriver) {
                (Some(firefox), Some(geckodriver)) => (firefox, geckodriver),
                _ => panic!("Firefox pages need Tools from firefox_tools_or_skip()"),
            },
        }
    }
}

/// Finds Chromium and chromedriver (`$CHROMIUM` / `$CHROMEDRIVER` override the `PATH`
/// search), and Firefox and geckodriver if present (`$FIREFOX` / `$GECKODRIVER`; geckodriver
/// is also looked for in `~/.cargo/bin`, where `cargo install` puts it).
pub fn find_tools() -> Result<Tools, String> {
    let chromium = from_env_or_path("CHROMIUM", &["chromium", "chromium-browser"]);
    let chromedriver = from_env_or_path("CHROMEDRIVER", &["chromedriver"]);
    let firefox = from_env_or_path("FIREFOX", &["firefox-esr", "firefox"]);
    let geckodriver = from_env_or_path("GECKODRIVER", &["geckodriver"]).or_else(|| {
        let home = std::env::var_os("HOME")?;
        Some(PathBuf::from(home).join(".cargo/bin/geckodriver")).filter(|p| p.is_file())
    });
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Ok(Tools {
            chromium,
            chromedriver,
            firefox,
            geckodriver,
        }),
        (chromium, chromedriver) => Err(missing(&[
            ("chromium", chromium.is_some()),
            ("chromedriver", chromedriver.is_some()),
        ])),
    }
}

fn missing(found: &[(&str, bool)]) -> String {
    let names: Vec<&str> = found
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| *name)
        .collect();
    format!("missing {}", names.join(" and "))
}

fn from_env_or_path(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|p| p.is_file())
}

/// Whether we run in CI (`CI` set to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The tools, or `None` after a loud notice when they are missing on a developer machine.
/// In CI a missing browser is a failure, never a silent skip.
pub fn tools_or_skip() -> Option<Tools> {
    match find_tools() {
        Ok(tools) => Some(tools),
        Err(missing) => skip_or_fail(
            &missing,
            "Chromium and chromedriver",
            "apt-get install chromium chromium-driver",
        ),
    }
}

/// Like [`tools_or_skip`], and Firefox and geckodriver must be there too.
pub fn firefox_tools_or_skip() -> Option<Tools> {
    const HOW: &str = "apt-get install chromium chromium-driver firefox-esr; \
                       cargo install --locked geckodriver";
    let found = match find_tools() {
        Ok(tools) => tools,
        Err(missing) => return skip_or_fail(&missing, "Chromium, Firefox and their drivers", HOW),
    };
    if found.firefox.is_some() && found.geckodriver.is_some() {
        return Some(found);
    }
    let missing = missing(&[
        ("firefox-esr", found.firefox.is_some()),
        ("geckodriver", found.geckodriver.is_some()),
    ]);
    skip_or_fail(&missing, "Chromium, Firefox and their drivers", HOW)
}

/// Panics in CI; elsewhere prints a notice nobody can miss and returns `None`.
pub fn skip_or_fail<T>(why: &str, need: &str, how: &str) -> Option<T> {
    assert!(!in_ci(), "browser tests need {need} in CI ({why}): {how}");
    // Once per kind of skip, straight to stderr, past the test harness's output capture, so
    // it is seen.
    static SHOWN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut shown = SHOWN.lock().unwrap_or_else(|e| e.into_inner());
    if shown.iter().any(|s| s == why) {
        return None;
    }
    shown.push(why.to_string());
    let _ = writeln!(
        std::io::stderr(),
        "\n********************************************************************\n\
         SKIPPED browser tests ({why}): they need {need}\n\
         ({how})\n\
         ********************************************************************\n"
    );
    None
}
