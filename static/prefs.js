// What the chat page is told by its address and remembers between visits: the interests
// to join with, whether to start at once, and the "Hide my IP", "Blur until safe" and
// "Auto-skip unsafe" choices. Storage and the
// query string are handed in, so this runs under node too.

const INTERESTS_KEY = 'strangers.interests';
const HIDE_IP_KEY = 'strangers.hideIp';
const BLUR_KEY = 'strangers.blurUntilSafe';
const AUTO_SKIP_KEY = 'strangers.autoSkipUnsafe';
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
