// The page's catalog for tests under node, where no page hands one to static/i18n.js: the
// client's messages of i18n/<code>.json, as the server writes them into a page.

import { readFileSync } from 'node:fs';

import { setCatalog } from '../../static/i18n.js';

/** The `client.*` messages of i18n/<code>.json. */
export function clientCatalog(code) {
  const all = JSON.parse(readFileSync(new URL(`../../i18n/${code}.json`, import.meta.url), 'utf8'));
  return Object.fromEntries(Object.entries(all).filter(([key]) => key.startsWith('client.')));
}

/** Makes `code` the language of the client's words. */
export function useLanguage(code) {
  setCatalog(code, clientCatalog(code));
}

useLanguage('en');
