/* Rapid mode: one label of one clip at a time, yes / no (a accept, r reject, u unsure,
 * z back one question). An ES module: keys from the one key map (keys.js, the hint line
 * drawn from it), answers and finishing through the outbox (outbox.js: in order, retried
 * while the server is away), the player through getPlayer() (player.js).
 *
 * Every answer is an ordinary decision: a POST to the same decide endpoint the full screen's buttons use (review.services.decision_record). A clip whose
 * questions are all answered is finished through rapid_next, which leases the next clip.
 *
 * Speed: every question of the current clip is in the page, and the next clip's questions
 * and audio are fetched while this one is answered, so the next question is shown without
 * waiting for the server; the POSTs go out in order behind it. */
import { KeyMap, isTyping, onControl } from "./keys.js";
import { toast } from "./toast.js";
import { Outbox, refusal } from "./outbox.js";
import { LabelSearch } from "./search.js";
import { keyLeaving, rapidTime, sinceCarried } from "./probe.js";
import { getPlayer } from "./player.js";

/* Every waiting request counts, finishes included: a failing one shows the banner. */
const outbox = new Outbox({ onChange: function (o) {
  var banner = $("unsaved-banner");
  if (!banner) return;
  banner.hidden = !(o.size && o.failing);
  banner.querySelector("[data-slot=count]").textContent =
    o.size + " answer" + (o.size === 1 ? "" : "s") + " not saved";
} });
const keymap = new KeyMap();
const $ = (id) => document.getElementById(id);
document.addEventListener("review:toast", (ev) => toast(ev.detail));

var root, list = [], idx = 0, stopped = false;
var answers = new WeakMap();      // question element -> verdict given in this session
var clipBlocks = {};              // clip id -> its .rapid-clip block
var finishing = {};               // clip id -> promise of its rapid_next answer
var keyAt = null, lastKeyAt = null;
var audioClip = null;             // the clip whose audio the player holds
var preloading = Promise.resolve();  // the next clip's questions on their way
var missing = null;               // {clipId, at}: "Anything missing?" is asked
var lastAnswered = null;          // the question answered last (e gives it a category)
var search = null;                // LabelSearch of "Anything missing?"
var held = null;                  // keys pressed while the next clip's questions are awaited

function go(url) {
  stopped = true;
  // A key that led here is measured to the first question of the next page.
  if (lastKeyAt !== null) keyLeaving("rapid.keyAt", lastKeyAt);
  window.location.assign(url);
}

function collect() {
  list = Array.prototype.slice.call(root.querySelectorAll("#questions [data-question]"));
  root.querySelectorAll("#questions [data-rapid-clip]").forEach(function (b) {
    clipBlocks[b.dataset.rapidClip] = b;
  });
}

function show(i) {
  idx = i;
  list.forEach(function (q, j) { q.hidden = j !== i; });
  var q = list[i];
  if (!q) return;
  q.querySelector("[data-slot=index]").textContent = (i + 1) + (list.length ? " of " + list.length + " loaded" : "");
  var v = answers.get(q), vEl = q.querySelector("[data-slot=verdict]");
  vEl.hidden = !v;
  vEl.textContent = v ? "Your answer: " + v + ". Press a, r or u to change it." : "";
  var full = root.querySelector("[data-full-link]");
  var block = clipBlocks[q.dataset.clip];
  if (full && block) full.setAttribute("href", block.dataset.fullUrl);
  // The audio plays on across a clip's questions; a question of another clip (the next
  // one, or an earlier one reached with z) brings its own.
  var player = getPlayer();
  if (audioClip === null) audioClip = q.dataset.clip;
  else if (audioClip !== q.dataset.clip && player && block && block.dataset.audioUrl) {
    audioClip = q.dataset.clip;
    player.load(block.dataset.audioUrl, undefined, block.dataset.sampleRate).catch(function () {});
  }
  if (keyAt !== null) {
    var t0 = keyAt;
    keyAt = null;
    requestAnimationFrame(function () { rapidTime(performance.now() - t0); });
  } else {
    var carried = sinceCarried("rapid.keyAt");
    if (carried !== null) requestAnimationFrame(function () { rapidTime(carried); });
  }
}

/* The next clip's questions (and, through the player, its audio) ahead of time. */
var preloaded = {};               // questions URL -> {promise, ctrl, settled} (kept once added)
// A preload that has not answered by then is given up and asked again (a request to a
// server that went away mid-answer can hang with no error).
var PRELOAD_TIMEOUT_MS = 10000;

/* Fetch a clip's questions fragment (once at a time per URL) and add it after the clips
 * held; resolves when it is added or has failed (a failed one may be asked again).
 * fresh: give up a fetch of that URL still on its way and ask again (a finish's answer
 * proves the server answers now; the earlier request may hang on a dead connection). */
function preload(url, fresh) {
  if (!url) return preloading;
  var got = preloaded[url];
  if (got && fresh && !got.settled) { got.ctrl.abort(); got = null; }
  if (!got) {
    // The clips held already: the fragment's own successor hint passes over them.
    var ask = url + (url.indexOf("?") < 0 ? "?" : "&") + "loaded=" + Object.keys(clipBlocks).join(",");
    var entry = { ctrl: new AbortController(), settled: false };
    var timer = setTimeout(function () { entry.ctrl.abort(); }, PRELOAD_TIMEOUT_MS);
    entry.promise = fetch(ask, { credentials: "same-origin", signal: entry.ctrl.signal }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      var holder = document.createElement("div");
      holder.innerHTML = html;
      var block = holder.querySelector("[data-rapid-clip]");
      // A body cut off by a connection that died mid-answer can arrive as an empty 200.
      if (!block) throw new Error("no questions in the answer");
      if (clipBlocks[block.dataset.rapidClip]) return;
      $("questions").appendChild(block);
      collect();
      keepAhead();
      if (block.dataset.audioUrl) {
        fetch(block.dataset.audioUrl, { credentials: "same-origin" })
          .then(function (r) { return r.arrayBuffer(); }).catch(function () {});
      }
    }).catch(function () {
      // Asked again (keepAhead, the finish's answer) once the server is back.
      if (preloaded[url] === entry) delete preloaded[url];
    }).then(function () { entry.settled = true; clearTimeout(timer); });
    preloaded[url] = got = entry;
  }
  preloading = got.promise;
  return preloading;
}

/* The questions of the clip a finish answered with, when they are not here (their preload
 * failed or hung while the server was away): asked afresh until they are, a few times. */
function questionsOf(clipId, url, tries) {
  if (clipBlocks[clipId] || !url || stopped || tries <= 0) return Promise.resolve();
  return preload(url, true).then(function () {
    if (clipBlocks[clipId] || stopped) return;
    return new Promise(function (ok) { setTimeout(ok, 500); }).then(function () {
      return questionsOf(clipId, url, tries - 1);
    });
  });
}

/* Two clips' questions ahead of the one answered: each questions fragment names its
 * successor, so a burst of keys never waits for a clip's finish (queued behind its
 * answers) to learn which clip comes next. */
function keepAhead() {
  var q = list[idx];
  var blocks = Array.prototype.slice.call($("questions").querySelectorAll("[data-rapid-clip]"));
  var here = q ? blocks.indexOf(clipBlocks[q.dataset.clip]) : 0;
  var last = blocks[blocks.length - 1];
  if (last && blocks.length - 1 - here < 2 && last.dataset.nextQuestions) preload(last.dataset.nextQuestions);
}

/* Finish a clip (every label answered) and lease the next; in order after its answers. */
/* The finish's POST through the outbox and its JSON answer. An answer cut off by a
 * connection that died mid-body (the finish itself was done) is taken to name the clip
 * whose questions come next here, which is what the server leases unless another
 * reviewer took it meanwhile (then the answers still count, on a clip not leased to this
 * reviewer). Not asked again: a second finish, queued behind the next clip's answers,
 * would name the clip after it. With no clip held next, the page goes home. */
function sendFinish(block) {
  return outbox.send({ url: block.dataset.nextUrl, htmx: false }).then(function (r) {
    return r.json().catch(function () {
      var after = block.nextElementSibling;
      var id = after && after.dataset && after.dataset.rapidClip;
      return { clip: id ? Number(id) : null, url: root.dataset.home, notice: "", cut: true };
    });
  });
}

function finish(clipId) {
  if (finishing[clipId]) return finishing[clipId];
  var block = clipBlocks[clipId];
  // Queued behind the clip's answers (the outbox keeps the order).
  finishing[clipId] = sendFinish(block).then(null, function (e) {
    var r = e.response;
    if (r && r.status === 409) {
      return r.json().then(function (j) {
        toast("This clip still has " + j.undecided + " undecided label(s).");
        go(block.dataset.fullUrl);
        return null;
      });
    }
    toast("Not saved: " + e.message);
    return null;
  }).then(function (j) {
    if (!j || stopped) return j;
    if (j.notice) toast(j.notice);  // the finish did not count for this reviewer
    // The next clip's questions first when they are not here (their preload failed while
    // the server was away), so that they come before the ones after them; j.ready says
    // when they are.
    if (j.clip && !clipBlocks[j.clip]) {
      j.ready = questionsOf(String(j.clip), j.questions_url, 5).then(function () {
        if (j.next_questions_url) preload(j.next_questions_url);
      });
    } else if (j.next_questions_url) {
      preload(j.next_questions_url);
    }
    return j;
  });
  return finishing[clipId];
}

function answer(verdict) {
  var q = list[idx];
  if (!q || stopped) return;
  answers.set(q, verdict);
  lastAnswered = q;
  var url = q.dataset.decideUrl, clipId = q.dataset.clip;
  // Saved in order behind the questions; retried while the server is away. (The plain
  // form answer is a redirect to the clip page: saved.)
  outbox.send({ url: url, body: { verdict: verdict }, htmx: false, onState: function (state, info) {
    if (state === "retrying") toast("Not saved — retrying (" + info.error + ")");
    else if (state === "saved" && info.retried && !outbox.size) toast("Saved: every answer reached the server.");
  } }).catch(function (e) { toast("Not saved: " + e.message); });
  var next = list[idx + 1];
  if (next && next.dataset.clip === clipId) { show(idx + 1); return; }
  if (list.slice(0, idx + 1).some(function (x) { return x.dataset.clip === clipId && !answers.get(x); })) {
    // An earlier question of this clip (reached back with z and skipped) is open: go there.
    show(list.findIndex(function (x) { return x.dataset.clip === clipId && !answers.get(x); }));
    return;
  }
  // The clip's last question: one more, "Anything missing?", before it is finished.
  askMissing(clipId, idx);
}

/* "Anything missing?": Enter nothing missing (finish the clip), / search a class to add
 * (the full screen's search, search.js), z back to the last question. */
function askMissing(clipId, at) {
  missing = { clipId: clipId, at: at };
  list[at].hidden = true;
  var card = $("rapid-missing"), block = clipBlocks[clipId];
  card.querySelector("[data-slot=ytid]").textContent = block ? block.dataset.ytid : "";
  $("missing-added").replaceChildren();
  $("label-search").setAttribute("hx-vals", JSON.stringify({ clip: clipId }));
  search.clear();
  $("add-refused").hidden = true;
  card.hidden = false;
}

function leaveMissing() {
  $("rapid-missing").hidden = true;
  search.clear();
  if (document.activeElement === $("label-search")) $("label-search").blur();
  var m = missing;
  missing = null;
  return m;
}

function nothingMissing() {
  var m = leaveMissing();
  if (!m) return;
  if (m.early) { show(m.at); return; }  // opened with / before the last question
  finishAndGoOn(m.clipId, m.at);
}

function addMissing(hit) {
  var m = missing;
  if (!m) return;
  $("add-refused").hidden = true;
  outbox.send({ url: hit.url, body: { label: hit.label }, onState: function (state, info) {
    if (state === "retrying") { toast("Adding " + hit.name + ": not saved — retrying"); return; }
    if (state !== "saved") return;
    var refused = refusal(info.response);
    if (refused) {
      var g = $("add-refused");
      g.textContent = refused;
      g.hidden = false;
      toast(refused);
      return;
    }
    var li = document.createElement("li");
    li.textContent = "Added and accepted: " + hit.name;
    $("missing-added").appendChild(li);
    toast("Added and accepted: " + hit.name + ". Enter: nothing else missing.");
  } }).catch(function (e) { toast("Not added: " + e.message); });
  $("label-search").blur();
}

/* Finish the clip (every label answered) and go on to the next clip's questions. */
function finishAndGoOn(clipId, at) {
  var done = finish(clipId);
  var next = list[at + 1];
  if (next) { enterClip(at + 1, done); return; }
  list[at].hidden = true;
  $("rapid-done").hidden = false;
  // Keys pressed meanwhile are kept and replayed on the next clip's questions (never
  // applied to the question just left).
  held = held || [];
  function enter() {
    $("rapid-done").hidden = true;
    enterClip(at + 1, done);
    var keys = held || [];
    held = null;
    // A replayed Enter may finish this clip before its successor is here: the keys after
    // it wait again.
    keys.forEach(function (fn) { if (held) held.push(fn); else fn(); });
  }
  // The questions on their way; else the finish's answer (and what it preloads), else the
  // next clip's own page.
  preloading.then(function () {
    if (stopped) return;
    if (list[at + 1]) { enter(); return; }
    done.then(function (j) {
      if (!j || stopped) { held = null; return; }
      return (j.ready || preloading).then(function () {
        if (stopped) return;
        var mine = list.findIndex(function (q) { return q.dataset.clip === String(j.clip); });
        // Its questions right after this clip's (they are appended in the order asked).
        if (mine === at + 1) enter();
        else go(j.url || root.dataset.home);
      });
    });
  });
}

function enterClip(i, done) {
  var next = list[i];
  show(i);
  keepAhead();
  done.then(function (j) {
    if (!j || stopped) return;
    if (String(j.clip) !== next.dataset.clip) { go(j.url || root.dataset.home); return; }  // someone else took it
    var block = clipBlocks[next.dataset.clip];
    var counters = $("counters");
    // The finish's own answer carries the counters as they are after it (no second request).
    if (counters && j.counters_html) {
      counters.innerHTML = j.counters_html;
    } else if (window.htmx && block && counters) {
      // (A refusal or a server away only leaves the counters as they were.)
      var asked = window.htmx.ajax("GET", block.dataset.countersUrl, { target: "#counters", swap: "innerHTML" });
      if (asked && asked.catch) asked.catch(function () {});
    }
  });
}

function back() {
  if (missing) { var m = leaveMissing(); show(m.at); return; }
  if (idx <= 0) { toast("This is the first question of the session."); return; }
  show(idx - 1);
}

/* --- e: error category and note on the answer just given -------------------------- */

function openNote() {
  var q = lastAnswered;
  if (!q) { toast("Answer a question first: e gives the last answer a category and a note."); return; }
  var dlg = $("category-dialog");
  dlg.querySelector("[data-slot=label]").textContent = q.dataset.name + " (" + answers.get(q) + ")";
  $("category-note").value = q.dataset.note || "";
  var chosen = q.dataset.category || "";
  dlg.querySelectorAll("button[data-category]").forEach(function (b) {
    var on = chosen !== "" && b.dataset.category === chosen;
    b.classList.toggle("is-active", on);
    b.setAttribute("aria-pressed", on ? "true" : "false");
  });
  dlg.hidden = false;
  (dlg.querySelector("button.is-active") || dlg.querySelector("button[data-category]")).focus();
}

function closeNote() {
  $("category-dialog").hidden = true;
  if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
}

function saveNote(categoryId) {
  var q = lastAnswered, note = $("category-note").value;
  closeNote();
  if (!q) return;
  q.dataset.category = categoryId;
  q.dataset.note = note;
  outbox.send({ url: q.dataset.categoryUrl, body: { error_category: categoryId, note: note }, htmx: false,
                onState: function (state) { if (state === "saved") toast("Saved with the answer on " + q.dataset.name + "."); } })
    .catch(function (e) { toast("Not saved: " + e.message); });
}

function dialogKey(ev) {
  if (ev.key === "Escape") { ev.preventDefault(); closeNote(); return; }
  if (isTyping(ev.target)) {
    if (ev.key === "Enter") {
      // Enter in the note saves the note with the chosen (or stored) category.
      ev.preventDefault();
      var active = $("category-dialog").querySelector("button.is-active");
      saveNote(active ? active.dataset.category : (lastAnswered && lastAnswered.dataset.category) || "");
    }
    return;
  }
  if (/^[0-9]$/.test(ev.key)) {
    var b = $("category-dialog").querySelector('button[data-key="' + ev.key + '"]');
    if (b) { ev.preventDefault(); saveNote(b.dataset.category); }
  }
}

function bindKeys() {
  function timed(fn) {
    return function () {
      var at = performance.now();
      var run = function () { lastKeyAt = keyAt = at; fn(); };
      if (held) held.push(run); else run();
    };
  }
  function withPlayer(fn) { var p = getPlayer(); if (p) fn(p); }
  function verdict(v) {
    return timed(function () {
      if (missing) { toast("Anything missing? Enter: nothing missing · /: search a class to add"); return; }
      answer(v);
    });
  }
  keymap
    .bind("a", "yes, accept", verdict("accept"))
    .bind("r", "no, reject", verdict("reject"))
    .bind("u", "unsure", verdict("unsure"))
    .bind("z", "back one question", timed(back))
    .bind("e", "error category and note on the last answer", openNote)
    .bind("/", "add a missing label (search)", function () {
      if (!missing) {
        var q = list[idx];
        if (!q) return;
        askMissing(q.dataset.clip, idx);
        missing.early = true;  // questions are left: Enter comes back to them
      }
      search.focus();
    })
    .bind("Enter", "nothing missing: finish the clip", function (ev) {
      if (held) { timed(nothingMissing)(); return; }  // kept for the next clip's questions
      if (!missing || (onControl(ev.target) && !ev.target.closest("#rapid-missing"))) return false;
      timed(nothingMissing)();  // timed to the next clip's first question (probe.js)
    })
    .bind(" ", "play / pause", function (ev) {
      if (onControl(ev.target) && !ev.target.closest("[data-player]")) return false;
      withPlayer(function (p) { p.togglePlay(); });
    })
    .bind("ArrowLeft", "seek 2 s back", function () { withPlayer(function (p) { p.seekBy(-2); }); })
    .bind("ArrowRight", "seek 2 s forward", function () { withPlayer(function (p) { p.seekBy(2); }); })
    .bind("0", "replay", function () { withPlayer(function (p) { p.replay(); }); })
    .bind("s", "view", function () { withPlayer(function (p) { toast("View: " + p.cycleView()); }); })
    .bind("f", "mel / linear", function () { withPlayer(function (p) { toast("Frequency scale: " + p.toggleScale()); }); });
  keymap.renderInline(root.querySelector(".rapid-keys"));
  document.addEventListener("keydown", function (ev) {
    if (!$("category-dialog").hidden) { dialogKey(ev); return; }
    if (ev.target && ev.target.id === "label-search") {
      // An empty box: Enter means nothing (more) is missing.
      if (ev.key === "Enter" && !ev.target.value.trim() && missing) { ev.preventDefault(); nothingMissing(); return; }
      search.key(ev);
      return;
    }
    if (isTyping(ev.target)) return;
    keymap.handle(ev);
  });
  document.addEventListener("click", function (ev) {
    var cat = ev.target.closest("#category-dialog button[data-category]");
    if (cat) saveNote(cat.dataset.category);
    else if (ev.target.id === "category-dialog") closeNote();
    if (ev.target.closest("[data-action=nothing-missing]")) nothingMissing();
  });
}

function init() {
  root = $("rapid");
  if (!root) return;
  collect();
  window.addEventListener("pageshow", function (ev) { if (ev.persisted) window.location.reload(); });
  search = new LabelSearch({ input: $("label-search"), results: $("search-results"),
                             onChoose: addMissing });
  bindKeys();
  var first = root.querySelector("[data-rapid-clip]");
  if (!list.length && first) {
    // Nothing left to ask on this clip: finish it and go on.
    finish(first.dataset.rapidClip).then(function (j) { if (j && !stopped) go(j.url || root.dataset.home); });
    return;
  }
  show(0);
  preload(root.dataset.nextQuestions);
}

init();
