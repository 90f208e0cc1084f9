// The language switcher in every page's header: picking a language reloads the page with
// ?lang=<code>, and the server answers in it and remembers it in a cookie. (Without
// JavaScript the form's own button does the same.)

const select = document.getElementById('lang-select');
if (select && select.form) {
  select.addEventListener('change', () => select.form.submit());
}
