/* Keyboard flow of the adjudication page, from the one key map (static/js/keys.js): the
 * hint line above the table is drawn from the same entries. a / r press the row's own
 * buttons (htmx posts exactly what a click would) and then the cursor rule of the review
 * screen applies: the cursor goes to the next row without an adjudication. */
import { KeyMap, RowCursor, isTyping } from "../js/keys.js";
import { getPlayer } from "../js/player.js";

const cursor = new RowCursor({
  rows: () => Array.from(document.querySelectorAll("#adj-rows tbody tr[data-label-id]")),
  isOpen: (tr) => !tr.dataset.adjudication && !tr.dataset.pending,
  keyOf: (tr) => tr.dataset.labelId,
});

function press(value) {
  const tr = cursor.ensure();
  const button = tr && tr.querySelector("button[value=" + value + "]");
  if (!button) return;
  button.click();
  if (value === "clear") return;
  tr.dataset.pending = value;  // the swap replaces the row, and this mark with it
  cursor.afterDecision(tr);
}

function withPlayer(fn) {
  const p = getPlayer();
  if (p) { fn(p); return; }
  // No player module (no audio file): the bare audio element, if any.
  const audio = document.querySelector("[data-player] audio");
  if (audio && fn.name === "toggle") { if (audio.paused) audio.play().catch(() => {}); else audio.pause(); }
}

const keymap = new KeyMap()
  .bind(["j", "ArrowDown"], "move down", () => cursor.move(1))
  .bind(["k", "ArrowUp"], "move up", () => cursor.move(-1))
  .bind("a", "accept", () => press("accept"))
  .bind("r", "reject", () => press("reject"))
  .bind("c", "clear", () => press("clear"))
  .bind("n", "next clip", () => {
    const next = document.getElementById("next-to-adjudicate");
    if (next) window.location.assign(next.href);
  })
  .bind(" ", "play/pause", () => withPlayer(function toggle(p) { p.togglePlay(); }))
  .bind("ArrowLeft", "seek 2 s back", () => withPlayer((p) => p.seekBy(-2)))
  .bind("ArrowRight", "seek 2 s forward", () => withPlayer((p) => p.seekBy(2)))
  .bind("0", "replay", () => withPlayer((p) => p.replay()))
  .bind("s", "waveform / spectrogram", () => withPlayer((p) => p.cycleView()));

keymap.renderInline(document.getElementById("adj-keys"));

document.addEventListener("keydown", (e) => {
  if (isTyping(e.target)) {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  keymap.handle(e);
});

// htmx replaces a row after each verdict (outerHTML): keep the cursor's row marked. With
// an outerHTML swap the old row is detached before htmx:afterSwap fires on it, so the
// event never reaches the document; htmx:load fires on the new row and bubbles.
document.addEventListener("htmx:load", () => cursor.refresh({ focus: false }));
cursor.ensure();
