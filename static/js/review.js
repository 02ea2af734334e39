/* The clip review screen: keyboard, label search, error categories, the undecided guard on
 * "next". The player (waveform, spectrogram) is static/js/player.js, reached through
 * window.ReviewPlayer. No dependencies beyond htmx 2 (served from django-htmx's static files).
 * Decisions are htmx requests fired by the row buttons; this file only finds the button
 * the key means and clicks it, so mouse and keyboard share one code path. One key per
 * label: after a / r / u the cursor moves to the next undecided row. */
(function () {
  "use strict";

  var state = {
    currentMid: null,     // the focused label row (by MID: rows are replaced by swaps)
    dialogMid: null,      // the row the error-category dialog is open for
    pendingAddMid: null,  // label just added by search: focus its row once it is in
    pendingEnter: false,  // Enter pressed before the search results caught up
    inflight: 0,          // htmx requests not answered yet
    nextArmed: false,     // "n" pressed once on a clip with undecided rows
    lastDecidedMid: null, // the row a / r / u acted on last (e gives its error category)
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

  /* A row with no verdict and no decision on its way to the server. */
  function undecided(r) { return !r.dataset.verdict && !r.dataset.pending; }
  function undecidedRows() { return rows().filter(undecided); }

  function nextUndecided(row) {
    var rs = rows(), i = rs.indexOf(row);
    for (var k = 1; k <= rs.length; k++) {
      var r = rs[(i + k) % rs.length];
      if (r !== row && undecided(r)) return r;
    }
    return null;
  }

  function clickVerdict(row, verdict) {
    var b = row.querySelector('button[data-verdict="' + verdict + '"]');
    if (!b) return false;
    row.dataset.pending = verdict;  // the swap replaces the row, and this mark with it
    b.click();
    return true;
  }

  function decide(verdict) {
    var row = ensureCurrent();
    if (!row) return;
    disarmNext();
    if (!clickVerdict(row, verdict)) return;
    state.lastDecidedMid = row.dataset.mid;
    // One key per label: on to the next undecided row; the last one keeps the cursor.
    var next = nextUndecided(row);
    if (next) setCurrent(next);
  }

  function acceptRest() {
    var rest = undecidedRows();
    if (!rest.length) { toast("Every row is decided."); return; }
    disarmNext();
    rest.forEach(function (r) { clickVerdict(r, "accept"); });
    toast("Accepted " + rest.length + " undecided row" + (rest.length === 1 ? "" : "s") + ".");
  }

  function undo() {
    var row = ensureCurrent();
    if (!row) return;
    var b = row.querySelector('[data-action="undo"]');
    if (b) b.click(); else toast("Nothing to undo on this row.");
  }

  /* --- error category dialog -------------------------------------------------------- */

  function openCategory(row) {
    if (!row) {
      // The cursor moved on after a / r / u: e means the row just decided.
      row = ensureCurrent();
      var last = rowByMid(state.lastDecidedMid);
      if (row && !row.dataset.verdict && last) row = last;
    }
    if (!row) return;
    if (row.dataset.pending && !row.dataset.verdict) { toast("Saving the decision… press e again."); return; }
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

  /* --- player (static/js/player.js) ----------------------------------------------- */

  function player() { return window.ReviewPlayer || null; }
  function withPlayer(fn) {
    var p = player();
    if (p) return fn(p);
    return undefined;
  }
  function preloadNext() {
    var url = $("review").dataset.nextAudio;
    if (!url || document.querySelector("[data-player]")) return;  // the player preloads it
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.arrayBuffer(); })
      .catch(function () {});
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
      case "A": acceptRest(); break;
      case "r": decide("reject"); break;
      case "u": decide("unsure"); break;
      case "z": undo(); break;
      case "e": openCategory(); break;
      case "/": $("label-search").focus(); $("label-search").select(); break;
      case "n": goNext(); break;
      case "Enter": if (onControl) return; goNext(); break;
      case "Escape": if (!state.nextArmed) return; disarmNext(); break;
      case " ": if (onControl) return; withPlayer(function (p) { p.togglePlay(); }); break;
      case "ArrowLeft": withPlayer(function (p) { p.seekBy(-2); }); break;
      case "ArrowRight": withPlayer(function (p) { p.seekBy(2); }); break;
      case "0": withPlayer(function (p) { p.replay(); }); break;
      case "l": withPlayer(function (p) { toast(p.toggleLoop() ? "Loop on" : "Loop off"); }); break;
      case "[": withPlayer(function (p) { toast("Speed " + p.changeSpeed(-1)); }); break;
      case "]": withPlayer(function (p) { toast("Speed " + p.changeSpeed(1)); }); break;
      case "s": withPlayer(function (p) { toast("View: " + p.cycleView()); }); break;
      case "+": case "=": withPlayer(function (p) { p.zoomBy(2); }); break;
      case "-": withPlayer(function (p) { p.zoomBy(0.5); }); break;
      case "?": toggleHelp(); break;
      default: return;
    }
    ev.preventDefault();
  }

  function disarmNext() {
    state.nextArmed = false;
    var g = $("next-guard");
    if (g) g.hidden = true;
  }

  /* "n" never finishes a clip with undecided rows silently: the first press says how many
   * and asks for "n" again (or Esc). */
  function guardNext() {
    var open = undecidedRows().length;
    if (!open || state.nextArmed) return true;
    state.nextArmed = true;
    var g = $("next-guard");
    if (g) {
      g.querySelector("[data-slot=count]").textContent =
        open + " label" + (open === 1 ? " is" : "s are") + " still undecided";
      g.hidden = false;
    }
    return false;
  }

  function goNext() {
    var f = $("next-form");
    if (!f || f.dataset.sent) return;
    if (!state.nextWanted && !guardNext()) return;
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
    // For the benchmark: when "n" went off (player.js measures the next clip's readiness).
    try { sessionStorage.setItem("review.navKeyAt", String(performance.timeOrigin + performance.now())); } catch (e) { /* storage off */ }
    f.submit();
  }

  /* --- wiring ------------------------------------------------------------------------ */

  function init() {
    if (!onPage()) return;
    document.addEventListener("keydown", onKey);
    preloadNext();
    // A page restored from the back/forward cache shows the DOM as it was left; fetch it
    // again so it shows what is saved.
    window.addEventListener("pageshow", function (ev) { if (ev.persisted) window.location.reload(); });
    var nf = $("next-form");
    if (nf) nf.addEventListener("submit", function (ev) {
      if (nf.dataset.sent) return;
      ev.preventDefault();
      goNext();
    });
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
      rows().forEach(function (r) { delete r.dataset.pending; });
      if (state.pendingAddMid) { state.pendingAddMid = null; $("search-results").hidden = false; }
    });
    document.body.addEventListener("review:label-refused", function (ev) {
      state.pendingAddMid = null;
      $("search-results").hidden = false;
      var g = $("add-refused");
      if (g) { g.textContent = ev.detail.message; g.hidden = false; }
      toast(ev.detail.message);
      $("label-search").focus();
    });
    document.body.addEventListener("htmx:sendError", function () {
      rows().forEach(function (r) { delete r.dataset.pending; });
      toast("Not saved: the server cannot be reached.");
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
