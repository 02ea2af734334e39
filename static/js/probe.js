/* Benchmark probes (bench/bench_review_browser.py), off for users: on only when the URL
 * carries ?probe=1 once (remembered for the tab in sessionStorage "review.probe") or the
 * benchmark sets that key before the page loads.
 *   window.playerMarks  player milestones in ms since navigation start
 *   window.rapidTimes   ms from a rapid-mode key to the next question on screen
 *   [data-player] data-ready-ms  ms from "n" to the next clip's player being ready
 *   window.swapLaps     milestones of the last in-place next clip, in ms since its "n" */

const KEY = "review.probe";

function enabled() {
  try {
    if (new URLSearchParams(window.location.search).get("probe") === "1") sessionStorage.setItem(KEY, "1");
    return sessionStorage.getItem(KEY) === "1";
  } catch (e) {
    return false;
  }
}

export const probing = enabled();

if (probing) {
  window.playerMarks = window.playerMarks || {};
  window.rapidTimes = window.rapidTimes || [];
}

let lapOrigin = null;

/* A milestone of the clip swapped in place after the last keyLeaving (once per name). */
export function lap(name) {
  if (probing && lapOrigin !== null && window.swapLaps && !(name in window.swapLaps)) {
    window.swapLaps[name] = Math.round(performance.now() - lapOrigin);
  }
}

function now() { return performance.timeOrigin + performance.now(); }

export function mark(name) {
  if (probing && !(name in window.playerMarks)) window.playerMarks[name] = Math.round(performance.now());
  lap(name);
}

/* A key that leads to another page: its time is carried over in sessionStorage. */
export function keyLeaving(name, atMs = performance.now()) {
  if (!probing) return;
  lapOrigin = atMs;
  window.swapLaps = {};
  try { sessionStorage.setItem(name, String(performance.timeOrigin + atMs)); } catch (e) { /* off */ }
}

/* ms since the key of keyLeaving(name) on the previous page, once; null when none. */
export function sinceCarried(name) {
  if (!probing) return null;
  try {
    const at = parseFloat(sessionStorage.getItem(name) || "");
    sessionStorage.removeItem(name);
    return isFinite(at) ? now() - at : null;
  } catch (e) {
    return null;
  }
}

export function rapidTime(ms) { if (probing) window.rapidTimes.push(ms); }
