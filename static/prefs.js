// What the chat page is told by its address and remembers between visits: the interests
// to join with, whether to start at once, the "Hide my IP", "Blur until safe" and
// "Auto-skip unsafe" choices, and the language (the landing page's pick, else the
// browser's); and the languages the landing page offers. Storage and the query string are
// handed in, so this runs under node too.

const INTERESTS_KEY = 'strangers.interests';
const HIDE_IP_KEY = 'strangers.hideIp';
const BLUR_KEY = 'strangers.blurUntilSafe';
const AUTO_SKIP_KEY = 'strangers.autoSkipUnsafe';
export const LANG_KEY = 'strangers.lang';
export const MODE_KEY = 'strangers.mode';

/** The languages the landing page lists (more are added for a browser that speaks another). */
export const LANGUAGES = [
  'ar', 'bn', 'de', 'en', 'es', 'fa', 'fr', 'hi', 'id', 'it', 'ja',
  'ko', 'nl', 'pl', 'pt', 'ru', 'sv', 'th', 'tr', 'uk', 'vi', 'zh',
];

/**
 * The primary language subtag of a BCP 47 tag ("de" of "de-AT"), lower-cased, as the
 * server takes it: two or three letters; "" for anything else.
 */
export function primaryLanguage(tag) {
  const primary = String(tag || '').split(/[-_]/)[0].toLowerCase();
  return /^[a-z]{2,3}$/.test(primary) ? primary : '';
}

/** A language's name in `uiLanguage` ("German" for "de" in English), or its code. */
export function languageName(code, uiLanguage) {
  try {
    return new Intl.DisplayNames([uiLanguage || 'en'], { type: 'language' }).of(code) || code;
  } catch {
    return code; // an old browser without Intl.DisplayNames
  }
}
const MAX_INTERESTS = 8;
const MAX_INTEREST_CHARS = 32;

/** Parses "Music, chess ,music" into ["music", "chess"] within the protocol's limits. */
export function parseInterests(raw) {
  const seen = new Set();
  for (const part of String(raw || '').split(',')) {
    const tag = part.trim().replace(/\s+/g, ' ').toLowerCase();
    const length = [...tag].length; // count characters, not UTF-16 units
    if (length < 1 || length > MAX_INTEREST_CHARS) continue;
    seen.add(tag);
    if (seen.size >= MAX_INTERESTS) break;
  }
  return [...seen];
}

export class Prefs {
  #params;
  #storage;

  /**
   * @param {string} search  the page's query string ("?start=1&interests=music")
   * @param {() => Storage} storage  window.localStorage (a getter: touching it can throw)
   */
  constructor(search, storage) {
    this.#params = new URLSearchParams(search);
    this.#storage = storage;
  }

  /** The interests the landing page sent (also remembered for its next visit); [] if none. */
  interests() {
    if (!this.#params.has('interests')) return [];
    const list = parseInterests(this.#params.get('interests'));
    this.#set(INTERESTS_KEY, list.join(', '));
    return list;
  }

  /**
   * The language to join with: the landing page's choice (remembered; "" is "any"), else
   * the one remembered, else the browser's.
   * @param {string} browserLanguage  navigator.language
   */
  lang(browserLanguage) {
    // `speak`, not `lang`: `?lang=` is the language the page itself is written in.
    if (this.#params.has('speak')) {
      const chosen = primaryLanguage(this.#params.get('speak'));
      this.#set(LANG_KEY, chosen);
      return chosen;
    }
    const saved = this.#get(LANG_KEY);
    if (saved !== null) return primaryLanguage(saved);
    return primaryLanguage(browserLanguage);
  }

  /** Arriving from the landing form means "start right away". */
  startAtOnce() {
    return this.#params.get('start') === '1' || this.#params.has('interests');
  }

  /** The next call's connection and offer are made ahead, unless the address says `ahead=0`. */
  get offerAhead() {
    return this.#params.get('ahead') !== '0';
  }

  get hideIp() {
    return this.#get(HIDE_IP_KEY) === '1';
  }

  set hideIp(on) {
    this.#set(HIDE_IP_KEY, on ? '1' : '0');
  }

  /** "Blur until safe": on unless the user turned it off. */
  get blurUntilSafe() {
    return this.#get(BLUR_KEY) !== '0';
  }

  set blurUntilSafe(on) {
    this.#set(BLUR_KEY, on ? '1' : '0');
  }

  /** "Auto-skip unsafe": off unless the user turned it on. */
  get autoSkipUnsafe() {
    return this.#get(AUTO_SKIP_KEY) === '1';
  }

  set autoSkipUnsafe(on) {
    this.#set(AUTO_SKIP_KEY, on ? '1' : '0');
  }

  #get(key) {
    try {
      return this.#storage().getItem(key);
    } catch {
      return null; // Storage can be disabled; it is only a convenience.
    }
  }

  #set(key, value) {
    try {
      this.#storage().setItem(key, value);
    } catch {
      // Same as above.
    }
  }
}
