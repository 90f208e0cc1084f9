// Landing page: Video or Text, the language to prefer, and the interests, remembered between
// visits; Text is picked for whoever has no camera or has blocked it. The 18+ confirmation
// is remembered too (the form cannot be sent without it; the chat page reads it back, as
// gate.js keeps it).

import { LANGUAGES, LANG_KEY, MODE_KEY, languageName, primaryLanguage } from './prefs.js';

const INTERESTS_KEY = 'strangers.interests';
const ADULT_KEY = 'strangers.adult';

function storageGet(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null; // Storage may be disabled; remembering is only a convenience.
  }
}

function storageSet(key, value) {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // Same as above.
  }
}

/** Fills the language list (names in the page's language, sorted) and selects `chosen`. */
function fillLanguages(select, chosen) {
  const codes = new Set(LANGUAGES);
  if (chosen) codes.add(chosen);
  const ui = document.documentElement.lang || navigator.language;
  const named = [...codes].map((code) => [code, languageName(code, ui)]);
  named.sort((a, b) => a[1].localeCompare(b[1], ui));
  for (const [code, name] of named) {
    const option = document.createElement('option');
    option.value = code;
    option.textContent = name;
    select.append(option);
  }
  select.value = chosen;
}

/** Why the camera cannot be used ("noCamera", "blocked"), or "" if it may be. */
async function cameraProblem() {
  try {
    if (navigator.permissions) {
      const state = await navigator.permissions.query({ name: 'camera' });
      if (state.state === 'denied') return 'blocked';
    }
  } catch {
    // Not every browser can be asked about the camera permission.
  }
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    if (!devices.some((d) => d.kind === 'videoinput')) return 'noCamera';
  } catch {
    return 'noCamera'; // no mediaDevices at all (not a secure page, or an old browser)
  }
  return '';
}

async function suggestText(form, hint) {
  const problem = await cameraProblem();
  // The user may have chosen by now: never override a choice made or remembered.
  if (!problem || storageGet(MODE_KEY) !== null || form.dataset.touched) return;
  form.elements.mode.value = 'text';
  // What the page says about the choice it made for the user: the server wrote it, in the
  // page's language, into the hint's data-no-camera and data-blocked.
  hint.textContent = hint.dataset[problem] || '';
  hint.hidden = false;
}

const input = document.getElementById('interests');
const form = input ? input.form : null;
const adult = document.getElementById('adult');

if (adult) {
  if (storageGet(ADULT_KEY) === '1') adult.checked = true;
  adult.addEventListener('change', () => {
    if (adult.checked) storageSet(ADULT_KEY, '1');
  });
}

if (input && form) {
  // Do not overwrite what the browser restored (back button) or the user typed.
  const saved = storageGet(INTERESTS_KEY);
  if (saved && !input.value) input.value = saved;

  const select = document.getElementById('speak');
  const remembered = storageGet(LANG_KEY);
  const lang = remembered !== null ? primaryLanguage(remembered) : primaryLanguage(navigator.language);
  if (select) fillLanguages(select, lang);

  const mode = storageGet(MODE_KEY);
  if (mode === 'text' || mode === 'video') form.elements.mode.value = mode;
  form.addEventListener('change', (event) => {
    if (event.target.name === 'mode') form.dataset.touched = '1';
  });
  const hint = document.getElementById('mode-hint');
  if (hint) suggestText(form, hint);

  form.addEventListener('submit', () => {
    input.value = input.value.trim();
    storageSet(INTERESTS_KEY, input.value);
    if (select) storageSet(LANG_KEY, select.value);
    // Remembered once the user has picked it, so the camera check never overrides it.
    if (form.dataset.touched) storageSet(MODE_KEY, form.elements.mode.value);
  });
}
