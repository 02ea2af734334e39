/* The next clip without a page load (issue 18). While a clip is on screen its successor's
 * page is fetched in the background (the audio is already in the HTTP cache through the
 * player's preload); on "n" the clip is finished with one POST that answers the next
 * clip's address as JSON, and the prepared #review is swapped in around the live player,
 * which loads the new audio (player.load). The URL follows with history.pushState; Back
 * and Forward fetch the clip's page afresh (its saved verdicts) and swap it the same way;
 * a reload is an ordinary full page. Anything unexpected (no player on either side, an
 * answer that is not a clip page) falls back to a full page load. */
import { getPlayer } from "./player.js";
import { lap } from "./probe.js";

const pages = new Map();  // absolute URL -> Promise of the parsed page (null on failure)

function absolute(url) { return new URL(url, window.location.href).href; }

function fetchPage(url) {
  return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((r) => (r.ok && !r.redirected ? r.text() : null))
    .then((html) => (html ? new DOMParser().parseFromString(html, "text/html") : null))
    .catch(() => null);
}

/* Fetch a clip page in the background (once), to be swapped in later; its clip is then
 * prepared in the player (player.prepare: audio decoded, waveform and spectrogram drawn off
 * screen), so that the swap has nothing left to load. */
export function prefetchPage(url) {
  if (!url) return;
  const key = absolute(url);
  if (!pages.has(key)) pages.set(key, fetchPage(key));
  pages.get(key).then(prepareClip);
}

function prepareClip(doc) {
  const player = getPlayer();
  const box = doc && doc.querySelector("#review section.player [data-player]");
  const audio = box && box.querySelector("audio[data-audio]");
  if (player && audio) player.prepare(audio.getAttribute("src"), box.dataset.sampleRate || "");
}

/* The prepared page of url (taken out of the cache), or a fresh fetch. */
function takePage(url, { fresh = false } = {}) {
  const key = absolute(url);
  const p = !fresh && pages.get(key);
  pages.delete(key);
  return p || fetchPage(key);
}

/* Finish the clip (the next-form's POST); resolves to {url, clip, message}. Throws when
 * the server cannot be reached or refuses (the caller then submits the form itself). */
export async function finishClip(form) {
  const body = new URLSearchParams(new FormData(form));
  const r = await fetch(form.action, {
    method: "POST", credentials: "same-origin", body,
    headers: { "X-Review-In-Place": "1", Accept: "application/json",
               "X-CSRFToken": body.get("csrfmiddlewaretoken") || "" },
  });
  if (!r.ok || !(r.headers.get("Content-Type") || "").includes("json")) throw new Error("HTTP " + r.status);
  const answer = await r.json();
  lap("answer");
  return answer;
}

/* Swap the clip page at url into the current one, keeping the player. Returns the new
 * #review element, or null after falling back to a full page load. */
export async function swapClip(url, { push = true, fresh = false } = {}) {
  const doc = await takePage(url, { fresh });
  lap("page");
  const player = getPlayer();
  const oldRoot = document.getElementById("review");
  const newRoot = doc && doc.getElementById("review");
  const oldSection = oldRoot && player && player.box.closest("section");
  const newSection = newRoot && newRoot.querySelector("section.player");
  const newBox = newSection && newSection.querySelector("[data-player]");
  if (!newBox || !oldSection || !oldRoot.contains(oldSection)) {
    window.location.assign(url);
    return null;
  }
  const root = document.adoptNode(newRoot);
  // The live player moves into the new page (same task: the media element keeps going);
  // only its clip line is the new one's.
  const info = newSection.querySelector(".clipinfo");
  const oldInfo = oldSection.querySelector(".clipinfo");
  root.querySelector("section.player").replaceWith(oldSection);
  if (oldInfo && info) oldInfo.replaceWith(info);
  // Scripts of the parsed page are not run again (their modules are loaded once).
  root.querySelectorAll("script").forEach((s) => s.remove());
  oldRoot.replaceWith(root);
  document.title = doc.title;
  player.box.dataset.autoplay = newBox.dataset.autoplay || "0";
  lap("dom");
  // load() clears data-ready before the URL changes (tests and the benchmark wait on it).
  player.load(newBox.querySelector("audio[data-audio]").getAttribute("src"),
              newBox.dataset.nextAudio || "", newBox.dataset.sampleRate || "");
  if (push) history.pushState({ reviewClip: root.dataset.clip }, "", url);
  window.scrollTo(0, 0);
  if (window.htmx) window.htmx.process(root);
  return root;
}
