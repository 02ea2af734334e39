/* Search result lists: "Clips like this" (clip page panel), the find page and class sweeps.
 * One key map per list (declared once below, with the help text the pages show):
 *   j / k     move to the next / previous clip
 *   Space     play or pause the current clip (one audio element per list)
 *   x         select the current clip (find page)
 *   A         select every clip on the page (find page)
 *   Enter     "Add <class> to selected" (find page)
 *   a / r / u accept / reject / unsure the swept class for the current clip, then the next
 *             clip plays (sweep; the next clip's audio is preloaded like rapid mode)
 * The panel's keys act only while focus is inside it (the clip page's own keys stay as
 * they are); the find and sweep pages' keys act anywhere but in a text field. */

const VERDICT_KEYS = { a: "accept", r: "reject", u: "unsure" };

function csrf() {
  try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; }
  catch (e) { return ""; }
}

function toast(text) {
  const t = document.getElementById("toast");
  if (!t) return;
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 3000);
}

function typing(el) {
  return el && (el.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName))
    && !(el.tagName === "INPUT" && el.type === "checkbox");
}

function setup(list) {
  if (list.dataset.searchReady) return;
  list.dataset.searchReady = "1";
  const rows = Array.from(list.querySelectorAll("tr[data-result]"));
  const audio = list.querySelector("audio[data-search-audio]");
  const scope = list.dataset.scope;
  const form = list.tagName === "FORM" ? list : null;
  const addButton = list.querySelector("[data-add-selected]");
  const count = list.querySelector("[data-selected-count]");
  let cur = -1;
  let preload = null;

  function boxes() { return rows.map((r) => r.querySelector("input[type=checkbox]")).filter(Boolean); }
  function refreshSelected() {
    const n = boxes().filter((b) => b.checked).length;
    rows.forEach((r) => {
      const b = r.querySelector("input[type=checkbox]");
      r.classList.toggle("is-selected", !!(b && b.checked));
    });
    if (count) count.textContent = `${n} selected`;
  }
  function move(i, { focus = true } = {}) {
    if (!rows.length) return;
    cur = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach((r, j) => r.classList.toggle("is-current", j === cur));
    const row = rows[cur];
    if (focus) row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
    const next = rows[cur + 1];
    if (scope === "sweep" && next) {  // the next clip's audio on its way, like rapid mode
      preload = new Audio();
      preload.preload = "auto";
      preload.src = next.dataset.audio;
    }
  }
  function play(i) {
    if (!audio || !rows.length) return;
    if (i !== undefined) move(i);
    const row = rows[cur < 0 ? 0 : cur];
    if (cur < 0) move(0);
    const url = row.dataset.audio;
    rows.forEach((r) => r.classList.toggle("is-playing", r === row));
    if (audio.dataset.src === url && !audio.paused) { audio.pause(); return; }
    if (audio.dataset.src !== url) { audio.src = url; audio.dataset.src = url; }
    audio.play().catch(() => toast("This clip's audio could not be played."));
  }
  async function decide(verdict) {
    const row = rows[cur];
    if (!row) return;
    const body = new URLSearchParams({ clip: row.dataset.clip, verdict });
    const r = await fetch(list.dataset.sweepDecide, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrf(), "X-Requested-With": "fetch",
                 "Content-Type": "application/x-www-form-urlencoded" },
      body,
    });
    if (!r.ok) { toast(`Not saved: ${await r.text()}`); return; }
    row.dataset.verdict = verdict;
    row.querySelectorAll(".verdicts button").forEach((b) => {
      b.setAttribute("aria-pressed", b.value === verdict ? "true" : "false");
    });
    if (cur + 1 < rows.length) play(cur + 1);
  }

  const keys = {
    j: () => move(cur + 1),
    k: () => move(cur - 1),
    " ": () => play(),
    x: () => {
      if (!form) return false;
      if (cur < 0) move(0);
      const b = rows[cur].querySelector("input[type=checkbox]");
      if (b) { b.checked = !b.checked; refreshSelected(); }
    },
    A: () => {
      if (!form) return false;
      boxes().forEach((b) => { b.checked = true; });
      refreshSelected();
    },
    Enter: () => {
      if (!form || !addButton) return false;
      if (addButton.disabled) { toast("Choose a class first."); return; }
      if (!boxes().some((b) => b.checked)) { toast("Select clips first: x selects, A the page."); return; }
      form.requestSubmit(addButton);
    },
  };
  if (scope === "sweep") Object.entries(VERDICT_KEYS).forEach(([key, v]) => { keys[key] = () => decide(v); });

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    const handler = keys[event.key];
    if (!handler) return;
    if (handler() === false) return;
    event.preventDefault();
    event.stopPropagation();
  }
  if (scope === "panel") {
    list.addEventListener("keydown", onKey);
  } else {
    document.addEventListener("keydown", onKey);
  }
  list.addEventListener("click", (event) => {
    const btn = event.target.closest("[data-play]");
    if (btn) { play(rows.indexOf(btn.closest("tr[data-result]"))); return; }
    const row = event.target.closest("tr[data-result]");
    if (row) move(rows.indexOf(row), { focus: false });
  });
  list.addEventListener("change", (event) => {
    if (event.target.matches("input[type=checkbox]")) refreshSelected();
  });
  if (audio) audio.addEventListener("ended", () => rows.forEach((r) => r.classList.remove("is-playing")));
  if (scope !== "panel" && rows.length) move(0, { focus: false });
  if (scope === "panel" && rows.length) { rows[0].tabIndex = 0; }
}

function scan(root) {
  if (root.matches && root.matches("[data-search-list]")) setup(root);  // htmx swaps it in whole
  root.querySelectorAll("[data-search-list]").forEach(setup);
  root.querySelectorAll("select[data-dataset-switch]").forEach((sel) => {
    if (sel.dataset.ready) return;
    sel.dataset.ready = "1";
    sel.addEventListener("change", () => { window.location.assign(sel.value); });
  });
}

scan(document);
document.body.addEventListener("htmx:load", (event) => scan(event.detail.elt));
