/* The clip review screen: keyboard, waveform, player, label search, error categories.
 * Our own code, no dependencies beyond htmx 2 (served from django-htmx's static files).
 * Decisions are htmx requests fired by the row buttons; this file only finds the button
 * the key means and clicks it, so mouse and keyboard share one code path. */
(function () {
  "use strict";

  var state = {
    currentMid: null,     // the focused label row (by MID: rows are replaced by swaps)
    dialogMid: null,      // the row the error-category dialog is open for
    pendingAddMid: null,  // label just added by search: focus its row once it is in
    pendingEnter: false,  // Enter pressed before the search results caught up
    peaks: null,          // waveform min/max per canvas column
    duration: 0,
    raf: 0,
    inflight: 0,          // htmx requests not answered yet
    nextWanted: false,    // "next clip" asked while a decision was still being saved
  };

  function $(id) { return document.getElementById(id); }
  function onPage() { return !!$("review"); }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#label-rows tr[data-mid]")); }
  function rowByMid(mid) {
    if (!mid) return null;
    return rows().find(function (r) { return r.dataset.mid === mid; }) || null;
  }
  function currentRow() { return rowByMid(state.currentMid); }

  function toast(text) {
    var t = $("toast");
    if (!t) return;
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.hidden = true; }, 2600);
  }

  /* --- rows ------------------------------------------------------------------------- */

  function setCurrent(row, focus) {
    rows().forEach(function (r) {
      r.classList.remove("is-current");
      r.setAttribute("tabindex", "-1");
      r.removeAttribute("aria-current");
    });
    if (!row) { state.currentMid = null; return; }
    state.currentMid = row.dataset.mid;
    row.classList.add("is-current");
    row.setAttribute("tabindex", "0");
    row.setAttribute("aria-current", "true");
    if (focus !== false) {
      row.focus({ preventScroll: true });
      row.scrollIntoView({ block: "nearest" });
    }
  }

  function move(delta) {
    var rs = rows();
    if (!rs.length) return;
    var i = rs.indexOf(currentRow());
    i = i < 0 ? 0 : Math.min(rs.length - 1, Math.max(0, i + delta));
    setCurrent(rs[i]);
  }

  function ensureCurrent() {
    var row = currentRow();
    if (!row) {
      var rs = rows();
      if (rs.length) { setCurrent(rs[0]); row = rs[0]; }
    }
    return row;
  }

  function decide(verdict) {
    var row = ensureCurrent();
    if (!row) return;
    var b = row.querySelector('button[data-verdict="' + verdict + '"]');
    if (b) b.click();
  }

  function undo() {
    var row = ensureCurrent();
    if (!row) return;
    var b = row.querySelector('[data-action="undo"]');
    if (b) b.click(); else toast("Nothing to undo on this row.");
  }

  /* --- error category dialog -------------------------------------------------------- */

  function openCategory(row) {
    row = row || ensureCurrent();
    if (!row) return;
    if (!row.dataset.verdict) { toast("Decide on this label first (a, r or u)."); return; }
    if (row.dataset.disagrees !== "1") {
      toast("This decision agrees with the original labels: no error category to give.");
      return;
    }
    setCurrent(row, false);
    var dlg = $("category-dialog");
    state.dialogMid = row.dataset.mid;
    dlg.querySelector('[data-slot="label"]').textContent = row.dataset.name;
    $("category-note").value = row.dataset.note || "";
    var chosen = row.dataset.category || "";
    dlg.querySelectorAll("button[data-category]").forEach(function (b) {
      var on = chosen !== "" && b.dataset.category === chosen;
      b.classList.toggle("is-active", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
    dlg.hidden = false;
    (dlg.querySelector("button.is-active") || dlg.querySelector("button[data-category]")).focus();
  }

  function closeCategory() {
    $("category-dialog").hidden = true;
    var row = rowByMid(state.dialogMid);
    state.dialogMid = null;
    if (row) setCurrent(row);
  }

  function saveCategory(categoryId) {
    var row = rowByMid(state.dialogMid);
    var note = $("category-note").value;
    closeCategory();
    if (!row) return;
    htmx.ajax("POST", row.dataset.categoryUrl, {
      target: row, swap: "outerHTML",
      values: { error_category: categoryId, note: note },
    });
  }

  function dialogKey(ev, typing) {
    if (ev.key === "Escape") { ev.preventDefault(); closeCategory(); return; }
    if (typing) {
      if (ev.key === "Enter") {
        ev.preventDefault();
        var active = $("category-dialog").querySelector("button.is-active");
        var row = rowByMid(state.dialogMid);
        saveCategory(active ? active.dataset.category : (row && row.dataset.category) || "");
      }
      return;
    }
    if (/^[0-9]$/.test(ev.key)) {
      var b = $("category-dialog").querySelector('button[data-key="' + ev.key + '"]');
      if (b) { ev.preventDefault(); saveCategory(b.dataset.category); }
    }
  }

  /* --- help -------------------------------------------------------------------------- */

  function toggleHelp(show) {
    var h = $("help");
    h.hidden = show === undefined ? !h.hidden : !show;
    if (!h.hidden) h.querySelector(".modal-box").focus();
  }

  /* --- search ------------------------------------------------------------------------ */

  function searchOptions() {
    return Array.prototype.slice.call(document.querySelectorAll("#search-results button.hit"));
  }
  function searchFresh() {
    var list = document.querySelector("#search-results .search-list");
    return list && list.dataset.q === $("label-search").value;
  }
  function highlight(delta) {
    var opts = searchOptions();
    if (!opts.length) return;
    var i = opts.findIndex(function (o) { return o.classList.contains("is-active"); });
    i = Math.min(opts.length - 1, Math.max(0, (i < 0 ? 0 : i + delta)));
    opts.forEach(function (o, j) {
      o.classList.toggle("is-active", j === i);
      o.setAttribute("aria-selected", j === i ? "true" : "false");
    });
    opts[i].scrollIntoView({ block: "nearest" });
  }
  function chooseResult() {
    var opts = searchOptions();
    var b = opts.find(function (o) { return o.classList.contains("is-active"); }) || opts[0];
    if (!b) { toast("No class matches: nothing to add."); return; }
    state.pendingAddMid = b.dataset.mid;
    // Hide, do not remove: htmx drops the response of an element no longer in the page.
    $("search-results").hidden = true;
    b.click();
  }
  function clearSearch() {
    var s = $("label-search");
    s.value = "";
    var r = $("search-results");
    r.innerHTML = "";
    r.hidden = false;
  }
  function searchKey(ev) {
    if (ev.key === "ArrowDown") { ev.preventDefault(); highlight(1); }
    else if (ev.key === "ArrowUp") { ev.preventDefault(); highlight(-1); }
    else if (ev.key === "Enter") {
      ev.preventDefault();
      if (!$("label-search").value.trim()) return;
      if (searchFresh()) chooseResult();
      else { state.pendingEnter = true; htmx.trigger($("label-search"), "search"); }
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      clearSearch();
      $("label-search").blur();
      var row = ensureCurrent();
      if (row) setCurrent(row);
    }
  }

  /* --- player and waveform ----------------------------------------------------------- */

  function audio() { return $("audio"); }
  function fmt(t) {
    if (!isFinite(t)) t = 0;
    var m = Math.floor(t / 60), s = t - 60 * m;
    return m + ":" + (s < 10 ? "0" : "") + s.toFixed(1);
  }
  function togglePlay() {
    var a = audio();
    if (!a) return;
    if (a.paused) a.play().catch(function () { toast("The browser refused to play."); });
    else a.pause();
  }
  function seekBy(dt) {
    var a = audio();
    if (a) a.currentTime = Math.max(0, Math.min((a.duration || state.duration) || 0, a.currentTime + dt));
  }
  function replay() {
    var a = audio();
    if (!a) return;
    a.currentTime = 0;
    a.play().catch(function () {});
  }
  function toggleLoop() {
    var a = audio(), b = $("loop");
    if (!a) return;
    a.loop = !a.loop;
    b.setAttribute("aria-pressed", a.loop ? "true" : "false");
    b.classList.toggle("is-active", a.loop);
  }
  function changeSpeed(step) {
    var sel = $("speed");
    if (!sel) return;
    sel.selectedIndex = Math.min(sel.options.length - 1, Math.max(0, sel.selectedIndex + step));
    sel.dispatchEvent(new Event("change"));
    toast("Speed " + sel.options[sel.selectedIndex].text);
  }

  function sizeCanvas(canvas) {
    var dpr = window.devicePixelRatio || 1;
    var w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = Math.max(1, Math.round(w * dpr));
    canvas.height = Math.max(1, Math.round(h * dpr));
    return dpr;
  }

  function computePeaks(buffer, columns) {
    var n = buffer.length, chans = buffer.numberOfChannels;
    var data = [];
    for (var c = 0; c < chans; c++) data.push(buffer.getChannelData(c));
    var mins = new Float32Array(columns), maxs = new Float32Array(columns);
    var per = Math.max(1, Math.floor(n / columns));
    for (var x = 0; x < columns; x++) {
      var lo = 1, hi = -1, start = Math.floor(x * n / columns), end = Math.min(n, start + per);
      for (var i = start; i < end; i++) {
        var v = 0;
        for (var k = 0; k < chans; k++) v += data[k][i];
        v /= chans;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (lo > hi) { lo = 0; hi = 0; }
      mins[x] = lo; maxs[x] = hi;
    }
    return { mins: mins, maxs: maxs };
  }

  function drawWave() {
    var canvas = $("waveform");
    if (!canvas) return;
    var ctx = canvas.getContext("2d");
    var w = canvas.width, h = canvas.height, mid = h / 2;
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#f2f4f8";
    ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = "#dfe3ea";
    ctx.fillRect(0, Math.floor(mid), w, 1);
    var a = audio();
    var dur = (a && isFinite(a.duration) && a.duration) || state.duration || 0;
    var pos = a && dur ? a.currentTime / dur : 0;
    var playedX = Math.round(pos * w);
    if (state.peaks) {
      var p = state.peaks, cols = p.mins.length;
      var peak = 0;
      for (var i = 0; i < cols; i++) peak = Math.max(peak, Math.abs(p.mins[i]), Math.abs(p.maxs[i]));
      var scale = peak > 0 ? (mid - 4) / peak : 0;  // normalised: quiet clips stay visible
      for (var x = 0; x < w; x++) {
        var j = Math.floor(x * cols / w);
        var y1 = mid - p.maxs[j] * scale, y2 = mid - p.mins[j] * scale;
        ctx.fillStyle = x < playedX ? "#2456c9" : "#9aa8c7";
        ctx.fillRect(x, y1, 1, Math.max(1, y2 - y1));
      }
    }
    if (dur) {
      ctx.fillStyle = "#c0392b";
      ctx.fillRect(Math.min(w - 2, playedX), 0, 2 * (window.devicePixelRatio || 1), h);
    }
    var time = $("time");
    if (time) time.textContent = fmt(a ? a.currentTime : 0) + " / " + fmt(dur);
  }

  function animate() {
    drawWave();
    var a = audio();
    if (a && !a.paused) state.raf = requestAnimationFrame(animate);
    else state.raf = 0;
  }

  function loadWaveform() {
    var canvas = $("waveform"), a = audio(), status = $("wave-status");
    if (!canvas || !a) return Promise.resolve();
    sizeCanvas(canvas);
    drawWave();
    var Ctx = window.OfflineAudioContext || window.webkitOfflineAudioContext;
    if (!Ctx) { status.textContent = "No waveform: this browser lacks Web Audio."; return Promise.resolve(); }
    return fetch(a.getAttribute("src"), { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.arrayBuffer();
      })
      .then(function (buf) {
        var ctx = new Ctx(1, 1, 44100);
        return ctx.decodeAudioData(buf);
      })
      .then(function (decoded) {
        state.duration = decoded.duration;
        state.peaks = computePeaks(decoded, Math.min(4000, canvas.width));
        status.hidden = true;
        drawWave();
      })
      .catch(function (e) { status.textContent = "No waveform (" + e.message + ")."; });
  }

  function preloadNext() {
    var url = $("review").dataset.nextAudio;
    if (!url) return;
    // Fills the HTTP cache (the audio view sends Cache-Control), so the next clip's
    // player and waveform start at once.
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.arrayBuffer(); })
      .catch(function () {});
  }

  function setupPlayer() {
    var a = audio(), canvas = $("waveform");
    if (!a) { preloadNext(); return; }
    a.addEventListener("play", function () { if (!state.raf) animate(); });
    ["pause", "seeked", "timeupdate", "loadedmetadata", "ended"].forEach(function (ev) {
      a.addEventListener(ev, drawWave);
    });
    $("replay").addEventListener("click", replay);
    $("loop").addEventListener("click", toggleLoop);
    $("speed").addEventListener("change", function (ev) {
      a.playbackRate = parseFloat(ev.target.value);
      a.preservesPitch = true;
    });
    canvas.addEventListener("click", function (ev) {
      var rect = canvas.getBoundingClientRect();
      var dur = (isFinite(a.duration) && a.duration) || state.duration;
      if (!dur) return;
      a.currentTime = Math.max(0, Math.min(dur, (ev.clientX - rect.left) / rect.width * dur));
      drawWave();
    });
    window.addEventListener("resize", function () {
      sizeCanvas(canvas);
      drawWave();
    });
    loadWaveform().then(preloadNext);
  }

  /* --- keys -------------------------------------------------------------------------- */

  function onKey(ev) {
    if (!onPage()) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    var typing = !!(t && t.matches && t.matches("input, textarea, select, [contenteditable]"));
    if (!$("category-dialog").hidden) { dialogKey(ev, typing); return; }
    if (!$("help").hidden) {
      if (ev.key === "Escape" || ev.key === "?") { ev.preventDefault(); toggleHelp(false); }
      return;
    }
    if (typing) {
      if (t.id === "label-search") searchKey(ev);
      else if (ev.key === "Escape") t.blur();
      return;
    }
    var onControl = !!(t && t.matches && t.matches("button, a[href], summary, audio, iframe"));
    switch (ev.key) {
      case "j": case "ArrowDown": move(1); break;
      case "k": case "ArrowUp": move(-1); break;
      case "a": decide("accept"); break;
      case "r": decide("reject"); break;
      case "u": decide("unsure"); break;
      case "z": undo(); break;
      case "e": openCategory(); break;
      case "/": $("label-search").focus(); $("label-search").select(); break;
      case "n": goNext(); break;
      case "Enter": if (onControl) return; goNext(); break;
      case " ": if (onControl) return; togglePlay(); break;
      case "ArrowLeft": seekBy(-2); break;
      case "ArrowRight": seekBy(2); break;
      case "0": replay(); break;
      case "l": toggleLoop(); break;
      case "[": changeSpeed(-1); break;
      case "]": changeSpeed(1); break;
      case "?": toggleHelp(); break;
      default: return;
    }
    ev.preventDefault();
  }

  function goNext() {
    var f = $("next-form");
    if (!f || f.dataset.sent) return;
    if (state.inflight > 0) {
      // Leave only once every decision of this clip is saved: navigating away would
      // abort the request that carries it.
      state.nextWanted = true;
      toast("Saving, then on to the next clip…");
      setTimeout(function () { state.inflight = 0; if (state.nextWanted) goNext(); }, 4000);
      return;
    }
    state.nextWanted = false;
    f.dataset.sent = "1";
    f.submit();
  }

  /* --- wiring ------------------------------------------------------------------------ */

  function init() {
    if (!onPage()) return;
    document.addEventListener("keydown", onKey);
    setupPlayer();
    var rs = rows();
    var firstOpen = rs.find(function (r) { return !r.dataset.verdict; }) || rs[0];
    if (firstOpen) setCurrent(firstOpen);

    document.addEventListener("click", function (ev) {
      if (!onPage()) return;
      var row = ev.target.closest && ev.target.closest("#label-rows tr[data-mid]");
      if (row) {
        if (ev.target.closest('[data-action="category"]')) { openCategory(row); return; }
        setCurrent(row, !ev.target.closest("button, a, input, select"));
      }
      var hit = ev.target.closest && ev.target.closest("#search-results button.hit");
      if (hit) state.pendingAddMid = hit.dataset.mid;
      var cat = ev.target.closest && ev.target.closest("#category-dialog button[data-category]");
      if (cat) saveCategory(cat.dataset.category);
      if (ev.target.id === "help-button") toggleHelp(true);
      if (ev.target.classList && ev.target.classList.contains("modal")) {
        if (ev.target.id === "help") toggleHelp(false); else closeCategory();
      }
    });

    document.body.addEventListener("htmx:afterSettle", function (ev) {
      if (!onPage()) return;
      var target = ev.detail && ev.detail.target;
      if (target && target.closest && target.closest("#search-results")) {
        if (state.pendingEnter) { state.pendingEnter = false; chooseResult(); }
        return;
      }
      if (state.pendingAddMid && rowByMid(state.pendingAddMid)) {
        var mid = state.pendingAddMid;
        state.pendingAddMid = null;
        clearSearch();
        setCurrent(rowByMid(mid));
        toast("Added and accepted: " + rowByMid(mid).dataset.name);
        return;
      }
      var row = currentRow();
      var busy = document.activeElement && document.activeElement.matches &&
        document.activeElement.matches("input, textarea, select");
      if (row) setCurrent(row, !busy && $("category-dialog").hidden);
    });
    document.body.addEventListener("htmx:beforeRequest", function () { state.inflight++; });
    document.body.addEventListener("htmx:afterRequest", function () {
      state.inflight = Math.max(0, state.inflight - 1);
      if (state.inflight === 0 && state.nextWanted) goNext();
    });
    document.body.addEventListener("htmx:responseError", function (ev) {
      var xhr = ev.detail && ev.detail.xhr;
      toast("Not saved: " + (xhr ? xhr.status + " " + (xhr.responseText || "").slice(0, 120) : "error"));
      if (state.pendingAddMid) { state.pendingAddMid = null; $("search-results").hidden = false; }
    });
    document.body.addEventListener("htmx:sendError", function () {
      toast("Not saved: the server cannot be reached.");
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
