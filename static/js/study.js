/* The blind quality-study screen (curation.quality): one question at a time, like rapid
 * mode, on the same player (player.js). Every answer POSTs to the study's answer endpoint
 * (curation.quality.answers: stored with the study and recorded as a decision). The next
 * clips' questions are fetched, and the next clip's audio loaded into the HTTP cache,
 * while the current one is answered.
 *
 * The keys are declared once, on the shared key map (keys.js) in bindKeys below; the help
 * line is drawn from the same entries. */
import { KeyMap, isTyping, onControl } from "./keys.js";
import { csrfToken } from "./outbox.js";
import { toast as showToast } from "./toast.js";

const root = document.getElementById("study");
let steps = [];          // question sections and recall cards, in order
let idx = 0;
let chain = Promise.resolve();
let stopped = false;
let loading = null;      // the next clips on their way
let exhausted = false;   // the server has nothing more after the last loaded clip
let audioClip = null;
let waiting = false;     // the last loaded question is answered, the next ones on their way
const answers = new WeakMap();


function player() { return window.ReviewPlayer; }
function toast(text) { showToast(text, 3000); }
function post(url, body) {
  return fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/x-www-form-urlencoded",
               Accept: "application/json" },
    body: body || "",
  });
}
function unitOf(el) { return el.closest("[data-unit]"); }

function collect() {
  steps = Array.from(root.querySelectorAll("#units [data-question], #units [data-recall-card]"));
}

function show(i) {
  idx = i;
  steps.forEach((s, j) => { s.hidden = j !== i; });
  const s = steps[i];
  if (!s) { finishIfDone(); return; }
  const slot = s.querySelector("[data-slot=index]");
  if (slot) slot.textContent = String(i + 1);
  const v = answers.get(s), vEl = s.querySelector("[data-slot=verdict]");
  if (vEl) {
    vEl.hidden = !v;
    vEl.textContent = v ? `Your answer: ${v}. Press a, r or u to change it.` : "";
  }
  const unit = unitOf(s);
  if (unit && audioClip !== unit.dataset.clip) {
    const first = audioClip === null;
    audioClip = unit.dataset.clip;
    if (!first && player() && unit.dataset.audioUrl) player().load(unit.dataset.audioUrl).catch(() => {});
  }
  if (s.matches("[data-recall-card]")) s.querySelector("[data-search]")?.focus();
  preloadIfNear();
}

function lastUnit() {
  const units = root.querySelectorAll("#units [data-unit]");
  return units.length ? units[units.length - 1] : null;
}

/* Fetch the clips after the last loaded one when the reviewer reaches the last loaded
 * clip; warm the HTTP cache with the next clip's audio. */
function preloadIfNear() {
  const s = steps[idx];
  const here = s && unitOf(s);
  const units = Array.from(root.querySelectorAll("#units [data-unit]"));
  const next = here ? units[units.indexOf(here) + 1] : null;
  if (next && next.dataset.audioUrl && !next.dataset.warmed) {
    next.dataset.warmed = "1";
    fetch(next.dataset.audioUrl, { credentials: "same-origin" }).then((r) => r.arrayBuffer()).catch(() => {});
  }
  if (!next && !loading && !exhausted) more();
}

function more() {
  const last = lastUnit();
  const url = root.dataset.moreUrl + (last ? `?after=${encodeURIComponent(last.dataset.unit)}` : "");
  loading = fetch(url, { credentials: "same-origin" }).then((r) => {
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return r.text();
  }).then((html) => {
    const holder = document.createElement("div");
    holder.innerHTML = html;
    const units = holder.querySelectorAll("[data-unit]");
    if (!units.length) exhausted = true;
    const box = document.getElementById("units");
    units.forEach((u) => {
      if (!box.querySelector(`[data-unit="${u.dataset.unit}"]`)) box.appendChild(u);
    });
    collect();
    if (window.htmx) window.htmx.process(box);
  }).catch(() => { exhausted = true; }).finally(() => { loading = null; });
  return loading;
}

function advance() {
  if (idx + 1 < steps.length) { show(idx + 1); return; }
  steps[idx].hidden = true;
  waiting = true;
  const wait = loading || (exhausted ? Promise.resolve() : more());
  wait.then(() => {
    waiting = false;
    if (idx + 1 < steps.length) show(idx + 1);
    else finishIfDone();
  });
}

function finishIfDone() {
  chain.then(() => {
    if (stopped) return;
    document.getElementById("study-done").hidden = false;
    player()?.pause?.();
  });
}

function answer(verdict) {
  const s = steps[idx];
  if (!s || stopped) return;
  if (s.matches("[data-recall-card]")) { toast("Add any class you hear, then press Done."); return; }
  answers.set(s, verdict);
  const url = s.dataset.answerUrl;
  chain = chain.then(() => post(url, `verdict=${encodeURIComponent(verdict)}`).then((r) => {
    if (!r.ok) return r.json().then((j) => { throw new Error(j.error || `HTTP ${r.status}`); });
    return null;
  })).catch((e) => { toast(`Not saved: ${e.message}`); });
  advance();
}

function back() {
  if (idx <= 0) { toast("This is the first question of the session."); return; }
  show(idx - 1);
}

function clipDone(card) {
  const unit = unitOf(card);
  chain = chain.then(() => post(unit.dataset.doneUrl).then((r) => {
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
  })).catch((e) => { toast(`Not saved: ${e.message}`); });
  advance();
}

function addClass(card, btn) {
  const body = `label=${encodeURIComponent(btn.dataset.addLabel)}`;
  post(card.dataset.addUrl, body).then((r) => r.text().then((text) => {
    if (!r.ok) { toast(text); return; }
    const added = card.querySelector("[data-slot=added]");
    added.textContent = (added.textContent ? `${added.textContent} · ` : "") + btn.dataset.name;
    const input = card.querySelector("[data-search]");
    input.value = "";
    card.querySelector(".search-results").innerHTML = "";
    input.focus();
  })).catch((e) => toast(`Not saved: ${e.message}`));
}

/* Between the last loaded question and the next ones an answer key would act on a hidden
 * question: it is swallowed (consumed, nothing done) until they come. */
function onQuestion(run) { return () => { if (!waiting) run(); }; }

function bindKeys() {
  const keymap = new KeyMap()
    .bind("a", "yes, present", onQuestion(() => answer("accept")))
    .bind("r", "no, absent", onQuestion(() => answer("reject")))
    .bind("u", "unsure", onQuestion(() => answer("unsure")))
    .bind("z", "back one question", onQuestion(() => back()))
    .bind(" ", "play / pause", (ev) => {
      if (onControl(ev.target)) return false;  // Space presses the focused button
      player()?.togglePlay();
    })
    .bind("0", "replay", () => { player()?.replay(); });
  keymap.renderInline(root.querySelector("[data-keys-help]"));
  document.addEventListener("keydown", (ev) => {
    if (isTyping(ev.target)) return;
    keymap.handle(ev);
  });
}

function init() {
  if (!root) return;
  bindKeys();
  root.addEventListener("click", (ev) => {
    const done = ev.target.closest("[data-action=clip-done]");
    if (done) { clipDone(done.closest("[data-recall-card]")); return; }
    const hit = ev.target.closest("[data-add-label]");
    if (hit) addClass(hit.closest("[data-recall-card]"), hit);
  });
  collect();
  if (!steps.length) { exhausted = true; finishIfDone(); return; }
  show(0);
}

init();
