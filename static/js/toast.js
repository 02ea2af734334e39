/* The one toast: a short status line (#toast in base.html, role=status). It sits in the
 * bottom-right corner, away from the label search box (app.css). */
let timer = null;

export function toast(text, ms = 2800) {
  const t = document.getElementById("toast");
  if (!t) return;
  t.textContent = text;
  t.hidden = false;
  clearTimeout(timer);
  timer = setTimeout(() => { t.hidden = true; }, ms);
}
