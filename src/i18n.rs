//! The languages the site speaks: which ones there are, which one a request gets (the `lang`
//! cookie of the language switcher, else `Accept-Language`, else English), and their message
//! catalogs (`i18n/<code>.json`, compiled in).
//!
//! A catalog is one flat JSON object: a key (`"landing.heading"`) names either a string or,
//! for a message that depends on a number, an object of CLDR plural forms (`"one"`,
//! `"other"`, …; `"other"` always). `{name}` in a string is a placeholder filled in when the
//! message is shown. Keys ending in `_html` may hold `<strong>` markup; no other key holds
//! markup. Keys under `client.` are the browser client's: the pages hand them to it
//! ([`Catalog::client_json`]) and `static/i18n.js` shows them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// The name of the cookie that remembers the language picked with the switcher.
pub(crate) const COOKIE: &str = "lang";

/// The most `Accept-Language` entries looked at: a header is a short list, and a long one
/// costs no more than this.
const MAX_RANGES: usize = 32;

/// A language of the pages.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub(crate) enum Lang {
    En,
    Es,
    Pt,
    De,
    Fr,
}

impl Lang {
    /// Every language, in the order the switcher lists them.
    pub(crate) const ALL: [Lang; 5] = [Lang::En, Lang::Es, Lang::Pt, Lang::De, Lang::Fr];

    /// What a request gets when nothing it says names one of ours.
    pub(crate) const DEFAULT: Lang = Lang::En;

    /// Its BCP 47 primary subtag, for `<html lang>`, the cookie and the catalog's file name.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
            Lang::Pt => "pt",
            Lang::De => "de",
            Lang::Fr => "fr",
        }
    }

    /// Its name in itself, for the switcher.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Es => "Español",
            Lang::Pt => "Português",
            Lang::De => "Deutsch",
            Lang::Fr => "Français",
        }
    }

    /// The language of a code or language tag (`"es"`, `"es-MX"`, `"PT_br"`), by its
    /// primary subtag; `None` for one we do not speak or for anything that is not a tag.
    pub(crate) fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        Lang::ALL
            .into_iter()
            .find(|lang| primary.eq_ignore_ascii_case(lang.code()))
    }

    /// The catalog's JSON as compiled in.
    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../i18n/en.json"),
            Lang::Es => include_str!("../i18n/es.json"),
            Lang::Pt => include_str!("../i18n/pt.json"),
            Lang::De => include_str!("../i18n/de.json"),
            Lang::Fr => include_str!("../i18n/fr.json"),
        }
    }

    /// The CLDR plural category of the count `n` (integers only, as the site counts people,
    /// minutes and characters): French and Portuguese say "one" for 0 and 1, the others
    /// for 1 alone.
    pub(crate) fn plural_category(self, n: u64) -> &'static str {
        let one = match self {
            Lang::Fr | Lang::Pt => n <= 1,
            Lang::En | Lang::Es | Lang::De => n == 1,
        };
        if one { "one" } else { "other" }
    }
}

/// The language for a request: the switcher's cookie when it names one of ours, else the
/// best of `Accept-Language`, else the default. Anything unreadable counts as not said.
pub(crate) fn negotiate(accept_language: Option<&str>, cookie: Option<&str>) -> Lang {
    cookie
        .and_then(from_cookie)
        .or_else(|| accept_language.and_then(from_accept_language))
        .unwrap_or(Lang::DEFAULT)
}

/// The language the `lang` cookie names in a `Cookie` header (`a=1; lang=es`).
pub(crate) fn from_cookie(header: &str) -> Option<Lang> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| Lang::ALL.into_iter().find(|l| l.code() == value.trim()))
}

/// The most preferred of our languages in an `Accept-Language` header: the highest q-value
/// wins, the earlier entry among equals; a region falls back to its language (`es-MX` is
/// Spanish); `*`, `q=0`, malformed entries and languages we do not speak are passed over.
pub(crate) fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(Lang, u16)> = None;
    for range in header.split(',').take(MAX_RANGES) {
        let mut parts = range.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        // Weight 1 unless a q parameter says otherwise; an unreadable one spoils the entry.
        let mut q = Some(1000);
        for param in parts.map(str::trim) {
            if let Some(value) = param.strip_prefix("q=").or(param.strip_prefix("Q=")) {
                q = q.and(parse_q(value));
            }
        }
        let Some(q) = q else {
            continue;
        };
        let well_formed = !tag.is_empty()
            && tag.len() <= 35
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let Some(lang) = Lang::from_tag(tag).filter(|_| well_formed && q > 0) else {
            continue;
        };
        if best.is_none_or(|(_, top)| q > top) {
            best = Some((lang, q));
        }
    }
    best.map(|(lang, _)| lang)
}

/// A q-value (`0`, `0.8`, `1.000`) in thousandths, or `None` if it is not one.
fn parse_q(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// One entry of a catalog.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(untagged)]
pub(crate) enum Message {
    /// A sentence, perhaps with placeholders.
    Text(String),
    /// The forms of a sentence about a count, by CLDR plural category.
    Plural(BTreeMap<String, String>),
}

/// The messages of one language.
#[derive(Debug)]
pub(crate) struct Catalog {
    /// Whose messages these are (for plural forms).
    pub lang: Lang,
    /// Every message by key.
    messages: HashMap<String, Message>,
    /// The `client.` messages as JSON that is safe inside a `<script>` element.
    client_json: String,
}

static CATALOGS: LazyLock<Vec<Catalog>> =
    LazyLock::new(|| Lang::ALL.into_iter().map(Catalog::load).collect());

/// The catalog of `lang`.
pub(crate) fn catalog(lang: Lang) -> &'static Catalog {
    &CATALOGS[Lang::ALL.iter().position(|l| *l == lang).unwrap_or(0)]
}

impl Catalog {
    /// Parses the compiled-in catalog (a unit test proves every one parses).
    fn load(lang: Lang) -> Catalog {
        let messages: HashMap<String, Message> = serde_json::from_str(lang.source())
            .unwrap_or_else(|e| panic!("i18n/{}.json is not a catalog: {e}", lang.code()));
        let client: BTreeMap<&String, &Message> = messages
            .iter()
            .filter(|(key, _)| key.starts_with("client."))
            .collect();
        let client_json = serde_json::to_string(&client)
            .expect("strings serialize")
            // Inside <script>, "</script>" or "<!--" in a string would end or confuse it.
            .replace('<', "\\u003c");
        Catalog {
            lang,
            messages,
            client_json,
        }
    }

    /// The entry of `key`: this language's, else English's (never expected: a test keeps
    /// the catalogs complete).
    pub(crate) fn message(&self, key: &str) -> Option<&Message> {
        self.messages
            .get(key)
            .or_else(|| catalog(Lang::DEFAULT).messages.get(key))
    }

    /// The sentence of `key` (a plural message gives its `other` form); the key itself if
    /// no catalog has it.
    pub(crate) fn t<'a>(&'a self, key: &'a str) -> &'a str {
        match self.message(key) {
            Some(Message::Text(text)) => text,
            Some(Message::Plural(forms)) => forms.get("other").map_or(key, String::as_str),
            None => key,
        }
    }

    /// The sentence of `key` with its placeholders filled in from `vars`.
    pub(crate) fn format(&self, key: &str, vars: &[(&str, &dyn Display)]) -> String {
        fill(self.t(key), vars)
    }

    /// The form of the plural message `key` for the count `n`, with `{count}` filled in.
    pub(crate) fn plural(&self, key: &str, n: u64) -> String {
        let text = match self.message(key) {
            Some(Message::Plural(forms)) => forms
                .get(self.lang.plural_category(n))
                .or_else(|| forms.get("other"))
                .map_or(key, String::as_str),
            _ => self.t(key),
        };
        fill(text, &[("count", &n)])
    }

    /// The client's messages (`client.*`) as a JSON object, for a
    /// `<script type="application/json">` element of the page.
    pub(crate) fn client_json(&self) -> &str {
        &self.client_json
    }
}

/// `text` with each `{name}` that `vars` names replaced by its value; other braces stay.
fn fill(text: &str, vars: &[(&str, &dyn Display)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (v.to_string(), close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(&value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The placeholder names of a sentence, sorted.
#[cfg(test)]
fn placeholders(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name.to_string()))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of a catalog, sorted.
    fn keys(lang: Lang) -> Vec<&'static str> {
        let mut keys: Vec<&str> = catalog(lang).messages.keys().map(String::as_str).collect();
        keys.sort();
        keys
    }

    /// Every text of a message with its plural form ("" for a sentence).
    fn texts(message: &Message) -> Vec<(&str, &str)> {
        match message {
            Message::Text(text) => vec![("", text.as_str())],
            Message::Plural(forms) => forms
                .iter()
                .map(|(category, text)| (category.as_str(), text.as_str()))
                .collect(),
        }
    }

    #[test]
    fn every_catalog_file_is_a_language_we_serve() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("i18n");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut ours: Vec<String> = Lang::ALL
            .iter()
            .map(|l| format!("{}.json", l.code()))
            .collect();
        ours.sort();
        assert_eq!(
            files, ours,
            "a catalog in i18n/ must be listed in Lang, and each Lang has one"
        );
    }

    #[test]
    fn every_catalog_has_exactly_the_keys_english_has() {
        let english = keys(Lang::En);
        assert!(english.len() > 50, "the English catalog is loaded");
        for lang in Lang::ALL {
            let theirs = keys(lang);
            let missing: Vec<_> = english.iter().filter(|k| !theirs.contains(k)).collect();
            let extra: Vec<_> = theirs.iter().filter(|k| !english.contains(k)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "i18n/{}.json misses {missing:?} and has {extra:?}, which English does not",
                lang.code()
            );
        }
    }

    #[test]
    fn every_message_has_the_placeholders_and_the_kind_english_has() {
        let english = catalog(Lang::En);
        for lang in Lang::ALL {
            for (key, message) in &catalog(lang).messages {
                let ours = &english.messages[key];
                let mut want: Vec<String> = texts(ours)
                    .into_iter()
                    .flat_map(|(_, text)| placeholders(text))
                    .collect();
                want.sort();
                want.dedup();
                assert_eq!(
                    matches!(message, Message::Plural(_)),
                    matches!(ours, Message::Plural(_)),
                    "{}: {key} is a plural message in one catalog only",
                    lang.code()
                );
                for (form, text) in texts(message) {
                    assert_eq!(
                        placeholders(text),
                        want,
                        "{}: {key} {form} has other placeholders than English",
                        lang.code()
                    );
                }
            }
        }
    }

    #[test]
    fn plural_messages_have_the_forms_their_language_needs() {
        for lang in Lang::ALL {
            for (key, message) in &catalog(lang).messages {
                let Message::Plural(forms) = message else {
                    continue;
                };
                for category in forms.keys() {
                    assert!(
                        ["zero", "one", "two", "few", "many", "other"].contains(&category.as_str()),
                        "{}: {key} has the unknown plural form {category:?}",
                        lang.code()
                    );
                }
                for n in 0..3 {
                    let category = lang.plural_category(n);
                    assert!(
                        forms.contains_key(category) && forms.contains_key("other"),
                        "{}: {key} lacks the {category:?} or \"other\" form",
                        lang.code()
                    );
                }
            }
        }
    }

    #[test]
    fn only_html_keys_hold_markup_and_only_strong() {
        for lang in Lang::ALL {
            for (key, message) in &catalog(lang).messages {
                for (_, text) in texts(message) {
                    let bare = text.replace("<strong>", "").replace("</strong>", "");
                    assert!(
                        !bare.contains(['<', '>', '&']),
                        "{}: {key} holds markup or an entity: {text}",
                        lang.code()
                    );
                    assert!(
                        bare.len() == text.len() || key.ends_with("_html"),
                        "{}: {key} holds <strong> but is not an _html key",
                        lang.code()
                    );
                    assert_eq!(
                        text.matches("<strong>").count(),
                        text.matches("</strong>").count(),
                        "{}: {key} leaves a <strong> open",
                        lang.code()
                    );
                }
            }
        }
    }

    #[test]
    fn the_client_gets_its_messages_and_nothing_that_ends_a_script() {
        for lang in Lang::ALL {
            let json = catalog(lang).client_json();
            assert!(!json.contains('<'), "{}: {json}", lang.code());
            let parsed: HashMap<String, Message> = serde_json::from_str(json).unwrap();
            assert!(parsed.keys().all(|k| k.starts_with("client.")));
            assert_eq!(
                parsed["client.looking"],
                catalog(lang).messages["client.looking"]
            );
        }
        let spanish: HashMap<String, Message> =
            serde_json::from_str(catalog(Lang::Es).client_json()).unwrap();
        assert_eq!(
            spanish["client.looking"],
            Message::Text("Buscando a un desconocido…".into())
        );
    }

    #[test]
    fn messages_are_filled_in_and_plurals_follow_the_language() {
        let en = catalog(Lang::En);
        assert_eq!(en.plural("landing.online", 1), "1 online now");
        let es = catalog(Lang::Es);
        assert_eq!(es.plural("landing.online", 1), "1 persona conectada ahora");
        assert_eq!(
            es.plural("landing.online", 0),
            "0 personas conectadas ahora"
        );
        let fr = catalog(Lang::Fr);
        assert_eq!(fr.plural("landing.online", 0), "0 personne en ligne");
        assert_eq!(fr.plural("landing.online", 2), "2 personnes en ligne");
        assert_eq!(
            en.format("error.not_websocket", &[("why", &"no key")]),
            "This address speaks WebSocket only: no key."
        );
        assert_eq!(fill("{a} {b} {", &[("a", &1)]), "1 {b} {");
        assert_eq!(en.t("no.such.key"), "no.such.key");
    }

    #[test]
    fn accept_language_picks_the_most_preferred_language_we_speak() {
        let pick = |h: &str| from_accept_language(h).map(Lang::code);
        assert_eq!(pick("es"), Some("es"));
        assert_eq!(pick("es-MX,es;q=0.9,en;q=0.8"), Some("es"));
        assert_eq!(pick("pt-BR"), Some("pt"));
        assert_eq!(pick("de-CH, en;q=0.5"), Some("de"));
        // q-values, not order, decide; equals keep their order.
        assert_eq!(pick("en;q=0.3, fr;q=0.9, es;q=0.5"), Some("fr"));
        assert_eq!(pick("fr;q=0.5, de;q=0.5"), Some("fr"));
        assert_eq!(pick("FR-ca;Q=1.0"), Some("fr"));
        // Languages we do not speak are passed over, as are refusals and wildcards.
        assert_eq!(pick("ja, zh-CN;q=0.9, de;q=0.1"), Some("de"));
        assert_eq!(pick("es;q=0, en;q=0.2"), Some("en"));
        assert_eq!(pick("*"), None);
        assert_eq!(pick("ja"), None);
        assert_eq!(pick(""), None);
    }

    #[test]
    fn garbage_accept_language_is_passed_over() {
        let pick = |h: &str| from_accept_language(h).map(Lang::code);
        assert_eq!(pick("es;q=2, de"), Some("de"), "q above 1");
        assert_eq!(pick("es;q=abc, fr;q=0.1"), Some("fr"));
        assert_eq!(pick("es;q=0.12345"), None, "more than three decimals");
        assert_eq!(pick("es;q=-1"), None);
        assert_eq!(pick("<script>, fr"), Some("fr"));
        assert_eq!(pick(";;;,,,==,;q="), None);
        assert_eq!(pick("e\u{301}s, pt"), Some("pt"));
        let long = "ja,".repeat(10_000) + "es";
        assert_eq!(pick(&long), None, "only the first entries are read");
        assert_eq!(
            negotiate(Some("\u{0}\u{ffff}"), Some("lang=\u{0}")),
            Lang::En
        );
    }

    #[test]
    fn the_cookie_overrides_accept_language_and_garbage_is_ignored() {
        assert_eq!(negotiate(Some("es"), Some("lang=de")), Lang::De);
        assert_eq!(
            negotiate(Some("es"), Some("theme=dark; lang=fr; x=1")),
            Lang::Fr
        );
        assert_eq!(negotiate(Some("es"), Some("lang=xx")), Lang::Es);
        assert_eq!(negotiate(Some("es"), Some("lang=")), Lang::Es);
        assert_eq!(negotiate(Some("es"), Some("language=de")), Lang::Es);
        assert_eq!(
            negotiate(None, Some("lang=es-MX")),
            Lang::En,
            "only our codes"
        );
        assert_eq!(negotiate(None, None), Lang::En);
        assert_eq!(negotiate(Some("en-US,en;q=0.9"), None), Lang::En);
    }
}
