// The words the client shows, in the page's language: `t(key, vars)` looks a message up in
// the catalog the server wrote into the page (<script type="application/json"
// id="i18n-catalog">, the `client.*` part of i18n/<lang>.json) and fills in its
// placeholders; a message about a number picks its plural form by the language's rules.
// No other module holds a sentence. Under node there is no page: tests hand a catalog to
// setCatalog().

let lang = 'en';
let messages = {};
let plurals = null;

/** Uses `catalog` (key → text, or key → {one, other, …}) for language `code` from now on. */
export function setCatalog(code, catalog) {
  lang = typeof code === 'string' && code ? code : 'en';
  messages = catalog && typeof catalog === 'object' ? catalog : {};
  plurals = null;
}

/** The page's language (its BCP 47 primary subtag). */
export function language() {
  return lang;
}

function pluralCategory(count) {
  if (!plurals) {
    try {
      plurals = new Intl.PluralRules(lang);
    } catch {
      plurals = { select: (n) => (n === 1 ? 'one' : 'other') };
    }
  }
  return plurals.select(count);
}

/**
 * The message `key` with each `{name}` replaced by `vars[name]`. A plural message takes
 * the form for `vars.count`. A key the catalog lacks comes back as itself, so a missing
 * word shows up as a visible bug rather than as nothing.
 * @param {string} key
 * @param {Record<string, string|number>} [vars]
 */
export function t(key, vars = {}) {
  let message = Object.hasOwn(messages, key) ? messages[key] : key;
  if (message !== null && typeof message === 'object') {
    const count = Number(vars.count);
    message = message[pluralCategory(count)] ?? message.other ?? key;
  }
  return String(message).replace(/\{(\w+)\}/g, (whole, name) =>
    Object.hasOwn(vars, name) ? String(vars[name]) : whole,
  );
}

/** The catalog the server put into the page, if this runs in one. */
function fromPage() {
  const el = globalThis.document ? globalThis.document.getElementById('i18n-catalog') : null;
  if (!el) return;
  try {
    setCatalog(el.dataset.lang, JSON.parse(el.textContent));
  } catch (err) {
    console.warn('strangers: unreadable message catalog', err);
  }
}

fromPage();
