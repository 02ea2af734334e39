/* Rapid mode: one label of one clip at a time, yes / no (a accept, r reject, u unsure,
 * z back one question). Every answer is an ordinary decision: a POST to the same decide
 * endpoint the full screen's buttons use (review.services.decision_record). A clip whose
 * questions are all answered is finished through rapid_next, which leases the next clip.
 *
 * Speed: every question of the current clip is in the page, and the next clip's questions
 * and audio are fetched while this one is answered, so the next question is shown without
 * waiting for the server; the POSTs go out in order behind it. */
(function () {
  "use strict";

  var root, list = [], idx = 0, chain = Promise.resolve(), stopped = false;
  var answers = new WeakMap();      // question element -> verdict given in this session
  var clipBlocks = {};              // clip id -> its .rapid-clip block
  var finishing = {};               // clip id -> promise of its rapid_next answer
  var keyAt = null, lastKeyAt = null;
  var audioClip = null;             // the clip whose audio the player holds
  var preloading = Promise.resolve();  // the next clip's questions on their way
  window.rapidTimes = [];           // ms from a key to the next question on screen (bench)

  function $(id) { return document.getElementById(id); }
  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; }
    catch (e) { return ""; }
  }
  function toast(text) {
    var t = $("toast");
    if (!t) return;
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.hidden = true; }, 3000);
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", redirect: "manual",
      headers: { "X-CSRFToken": csrf(), "Content-Type": "application/x-www-form-urlencoded" },
      body: body || "",
    });
  }
  function go(url) {
    stopped = true;
    // A key that led here is measured to the first question of the next page.
    if (lastKeyAt !== null) {
      try { sessionStorage.setItem("rapid.keyAt", String(performance.timeOrigin + lastKeyAt)); } catch (e) { /* off */ }
    }
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
    var player = window.ReviewPlayer;
    if (audioClip === null) audioClip = q.dataset.clip;
    else if (audioClip !== q.dataset.clip && player && block && block.dataset.audioUrl) {
      audioClip = q.dataset.clip;
      player.load(block.dataset.audioUrl).catch(function () {});
    }
    if (keyAt !== null) {
      var t0 = keyAt;
      keyAt = null;
      requestAnimationFrame(function () { window.rapidTimes.push(performance.now() - t0); });
    } else {
      var carried = parseFloat(sessionStorage.getItem("rapid.keyAt") || "");
      if (isFinite(carried)) {
        sessionStorage.removeItem("rapid.keyAt");
        requestAnimationFrame(function () { window.rapidTimes.push(performance.timeOrigin + performance.now() - carried); });
      }
    }
  }

  /* The next clip's questions (and, through the player, its audio) ahead of time. */
  function preload(url) {
    if (!url) return preloading;
    preloading = fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      var holder = document.createElement("div");
      holder.innerHTML = html;
      var block = holder.querySelector("[data-rapid-clip]");
      if (!block || clipBlocks[block.dataset.rapidClip]) return;
      $("questions").appendChild(block);
      collect();
      if (block.dataset.audioUrl) {
        fetch(block.dataset.audioUrl, { credentials: "same-origin" })
          .then(function (r) { return r.arrayBuffer(); }).catch(function () {});
      }
    }).catch(function () { /* the clip's own page load will fetch it */ });
    return preloading;
  }

  /* Finish a clip (every label answered) and lease the next; in order after its answers. */
  function finish(clipId) {
    if (finishing[clipId]) return finishing[clipId];
    var block = clipBlocks[clipId];
    finishing[clipId] = chain = chain.then(function () {
      if (stopped) return null;
      return post(block.dataset.nextUrl).then(function (r) {
        if (r.status === 409) {
          return r.json().then(function (j) {
            toast("This clip still has " + j.undecided + " undecided label(s).");
            go(block.dataset.fullUrl);
            return null;
          });
        }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      });
    }).then(function (j) {
      if (!j || stopped) return j;
      if (j.notice) toast(j.notice);  // the finish did not count for this reviewer
      if (j.next_questions_url) preload(j.next_questions_url);
      return j;
    }).catch(function (e) { toast("Not saved: " + e.message); stopped = true; return null; });
    return finishing[clipId];
  }

  function answer(verdict) {
    var q = list[idx];
    if (!q || stopped) return;
    answers.set(q, verdict);
    var url = q.dataset.decideUrl, clipId = q.dataset.clip;
    chain = chain.then(function () {
      if (stopped) return null;
      return post(url, "verdict=" + encodeURIComponent(verdict)).then(function (r) {
        // 302: the plain-form answer (a redirect to the clip page): the decision is saved.
        if (!(r.ok || r.type === "opaqueredirect")) throw new Error("HTTP " + r.status);
      });
    }).catch(function (e) { toast("Not saved: " + e.message); stopped = true; });
    var next = list[idx + 1];
    if (next && next.dataset.clip === clipId) { show(idx + 1); return; }
    if (list.slice(0, idx + 1).some(function (x) { return x.dataset.clip === clipId && !answers.get(x); })) {
      // An earlier question of this clip (reached back with z and skipped) is open: go there.
      show(list.findIndex(function (x) { return x.dataset.clip === clipId && !answers.get(x); }));
      return;
    }
    // The clip's last question: finish it; the next clip's questions are (almost always)
    // here already.
    var done = finish(clipId);
    if (next) { enterClip(idx + 1, done); return; }
    var at = idx;
    list[at].hidden = true;
    $("rapid-done").hidden = false;
    // Wait for the questions on their way, else for the next clip's own page.
    Promise.all([preloading, done]).then(function (res) {
      var j = res[1];
      if (!j || stopped) return;
      if (list[at + 1] && String(j.clip) === list[at + 1].dataset.clip) {
        $("rapid-done").hidden = true;
        enterClip(at + 1, done);
      } else {
        go(j.url || root.dataset.home);
      }
    });
  }

  function enterClip(i, done) {
    var next = list[i];
    show(i);
    done.then(function (j) {
      if (!j || stopped) return;
      if (String(j.clip) !== next.dataset.clip) { go(j.url || root.dataset.home); return; }  // someone else took it
      var block = clipBlocks[next.dataset.clip];
      if (window.htmx && block && $("counters")) {
        window.htmx.ajax("GET", block.dataset.countersUrl, { target: "#counters", swap: "innerHTML" });
      }
    });
  }

  function back() {
    if (idx <= 0) { toast("This is the first question of the session."); return; }
    show(idx - 1);
  }

  function onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    if (t && t.matches && t.matches("input, textarea, select, [contenteditable]")) return;
    var p = window.ReviewPlayer;
    switch (ev.key) {
      case "a": lastKeyAt = keyAt = performance.now(); answer("accept"); break;
      case "r": lastKeyAt = keyAt = performance.now(); answer("reject"); break;
      case "u": lastKeyAt = keyAt = performance.now(); answer("unsure"); break;
      case "z": lastKeyAt = keyAt = performance.now(); back(); break;
      case " ": if (t && t.matches && t.matches("button, a[href], summary")) return; if (p) p.togglePlay(); break;
      case "s": if (p) toast("View: " + p.cycleView()); break;
      case "ArrowLeft": if (p) p.seekBy(-2); break;
      case "ArrowRight": if (p) p.seekBy(2); break;
      case "0": if (p) p.replay(); break;
      default: return;
    }
    ev.preventDefault();
  }

  function init() {
    root = $("rapid");
    if (!root) return;
    collect();
    window.addEventListener("pageshow", function (ev) { if (ev.persisted) window.location.reload(); });
    document.addEventListener("keydown", onKey);
    var first = root.querySelector("[data-rapid-clip]");
    if (!list.length && first) {
      // Nothing left to ask on this clip: finish it and go on.
      finish(first.dataset.rapidClip).then(function (j) { if (j && !stopped) go(j.url || root.dataset.home); });
      return;
    }
    show(0);
    preload(root.dataset.nextQuestions);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
