/* The note on the clip as a whole (templates/review/_clip_note.html). Saved through the
 * page's outbox like a decision (in order, retried while the server is away); the answer
 * (the form's partial) replaces the form. Delegated from document, so a clip swapped in
 * place (issue 18) needs no new binding. */
import { toast } from "./toast.js";

const FORM = "#clip-note-form";

/* The key map's handler: focus the note field (Enter saves, Esc leaves). */
export function focusClipNote() {
  const input = document.querySelector(FORM + " input[name=note]");
  if (!input) return false;
  input.focus();
  input.select();
}

export function mountClipNote({ outbox, onSent }) {
  document.addEventListener("submit", (ev) => {
    const form = ev.target.closest && ev.target.closest(FORM);
    if (!form) return;
    ev.preventDefault();
    const state = form.querySelector("[data-slot=note-state]");
    const body = new URLSearchParams({ note: form.querySelector("input[name=note]").value });
    state.textContent = "Saving…";
    // Keys go back to the page: the note never moves the cursor (onSent refreshes it).
    document.activeElement?.blur();
    if (onSent) onSent();
    outbox.send({ url: form.action, body, onState: (s, info) => {
      const current = document.querySelector(FORM);
      const slot = current && current.querySelector("[data-slot=note-state]");
      if (s === "retrying") { if (slot) slot.textContent = "Note not saved — retrying"; return; }
      if (s === "saved") {
        info.response.text().then((html) => {
          // Only the form this note came from (the clip may have been swapped since).
          if (current && current.action === form.action) window.htmx.swap(current, html, { swapStyle: "outerHTML" });
          if (info.retried) toast("Note on the clip saved.");
        });
        return;
      }
      info.response.text().then((t) => {
        if (slot && current.action === form.action) slot.textContent = "Note not saved: " + t.slice(0, 120);
        toast("Note not saved: " + t.slice(0, 120));
      });
    } }).catch(() => {});
  });
}
