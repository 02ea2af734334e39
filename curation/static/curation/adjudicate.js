// Keyboard flow of the adjudication page: j/k (or arrows) move between label rows,
// a accept, r reject, c clear the adjudication, n next clip in the queue, Space play/pause.
// The keys press the row's own buttons, so htmx posts exactly what a click would.
(function () {
  "use strict";

  let current = 0;

  function rows() {
    return Array.from(document.querySelectorAll("#adj-rows tbody tr[data-label-id]"));
  }

  function mark(index, scroll) {
    const all = rows();
    if (!all.length) return;
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((tr, i) => tr.classList.toggle("is-current", i === current));
    if (scroll) all[current].scrollIntoView({ block: "nearest" });
  }

  function press(selector) {
    const tr = rows()[current];
    const button = tr && tr.querySelector(selector);
    if (button) button.click();
  }

  function typing(target) {
    return target && (target.isContentEditable ||
      ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e.target)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    switch (e.key) {
      case "j": case "ArrowDown": mark(current + 1, true); break;
      case "k": case "ArrowUp": mark(current - 1, true); break;
      case "a": press("button[value=accept]"); break;
      case "r": press("button[value=reject]"); break;
      case "c": press("button[value=clear]"); break;
      case "n": {
        const next = document.getElementById("next-to-adjudicate");
        if (next) window.location.assign(next.href);
        break;
      }
      case " ": {
        // The shared player (static/js/player.js) when it has loaded, else its audio element.
        if (window.ReviewPlayer) { window.ReviewPlayer.togglePlay(); break; }
        const audio = document.querySelector("[data-player] audio");
        if (!audio) return;
        if (audio.paused) audio.play().catch(() => {}); else audio.pause();
        break;
      }
      case "s": {
        if (!window.ReviewPlayer) return;
        window.ReviewPlayer.cycleView();
        break;
      }
      default: return;
    }
    e.preventDefault();
  });

  // htmx replaces a row after each verdict (outerHTML): keep the same row current. With
  // an outerHTML swap the old row is detached before htmx:afterSwap fires on it, so the
  // event never reaches the document; htmx:load fires on the new row and bubbles.
  document.addEventListener("htmx:load", () => mark(current, false));
  document.addEventListener("DOMContentLoaded", () => mark(0, false));
})();
