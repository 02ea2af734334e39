/* Search result lists: "Clips like this" (clip page panel), the find page and class sweeps.
 * Their keys are declared once per list on the shared key map (keys.js: label + handler,
 * the hint line drawn from the same entries into [data-keys-help]): j / k move, Space
 * plays (one audio element per list); on the find page x selects the current clip, A the
 * page, Enter adds the class to the selected clips; in a sweep a / r / u give the verdict on
 * the swept class, then the next clip plays (its audio preloaded like rapid mode).
 * The panel's keys act only while focus is inside it (the clip page's own keys stay as
 * they are); the find and sweep pages' keys act anywhere but in a text field. */
import { KeyMap, isTyping } from "./keys.js";
import { csrfToken } from "./outbox.js";
import { toast } from "./toast.js";

const VERDICT_KEYS = [["a", "accept"], ["r", "reject"], ["u", "unsure"]];
const TOAST_MS = 3000;

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
    audio.play().catch(() => toast("This clip's audio could not be played.", TOAST_MS));
  }
  async function decide(verdict) {
    const row = rows[cur];
    if (!row) return;
    const body = new URLSearchParams({ clip: row.dataset.clip, verdict });
    const r = await fetch(list.dataset.sweepDecide, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch",
                 "Content-Type": "application/x-www-form-urlencoded" },
      body,
    });
    if (!r.ok) { toast(`Not saved: ${await r.text()}`, TOAST_MS); return; }
    row.dataset.verdict = verdict;
    row.querySelectorAll(".verdicts button").forEach((b) => {
      b.setAttribute("aria-pressed", b.value === verdict ? "true" : "false");
    });
    if (cur + 1 < rows.length) play(cur + 1);
  }

  const keymap = new KeyMap();
  if (scope === "sweep") {  // first in the hint: one key per clip
    VERDICT_KEYS.forEach(([key, v]) => keymap.bind(key, v, () => decide(v)));
  }
  keymap
    .bind("j", "next clip", () => move(cur + 1))
    .bind("k", "previous clip", () => move(cur - 1))
    .bind(" ", "play / pause", () => play());
  if (form) {
    keymap
      .bind("x", "select the current clip", () => {
        if (cur < 0) move(0);
        const b = rows[cur].querySelector("input[type=checkbox]");
        if (b) { b.checked = !b.checked; refreshSelected(); }
      })
      .bind("A", "select every clip on the page", () => {
        boxes().forEach((b) => { b.checked = true; });
        refreshSelected();
      });
    if (addButton) {
      keymap.bind("Enter", "add the class to the selected clips", () => {
        if (addButton.disabled) { toast("Choose a class first.", TOAST_MS); return; }
        if (!boxes().some((b) => b.checked)) { toast("Select clips first: x selects, A the page.", TOAST_MS); return; }
        form.requestSubmit(addButton);
      });
    }
  }
  // The hint sits in the list, or (sweep) above it on the page.
  keymap.renderInline(list.querySelector("[data-keys-help]")
    || (scope === "panel" ? null : document.querySelector("[data-keys-help]")));

  function onKey(event) {
    // A checkbox is not a text field: j / x / Space still act on the list (isTyping).
    if (isTyping(event.target)) return;
    // Consumed here: the clip page's own key map (on document) must not act on it too.
    if (keymap.handle(event)) event.stopPropagation();
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
