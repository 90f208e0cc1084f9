// Landing page: remember the interests between visits, and the 18+ confirmation (the form
// cannot be sent without it; the chat page reads it back, as gate.js keeps it).

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

  form.addEventListener('submit', () => {
    input.value = input.value.trim();
    storageSet(INTERESTS_KEY, input.value);
  });
}
