/* The full clip review screen. mountReview(root) binds one clip's rows, search, dialogs and
 * the undecided guard to the page's key map (keys.js); issue 18's in-place next clip can
 * swap #review and call it again (the key map and the outbox live once per page).
 *
 * Every decision, undo, added label and note goes through the outbox (outbox.js): in
 * order, retried while the server is away, the row marked "not saved — retrying" until it
 * is saved; the answer (the row's partial) is swapped in with htmx.swap. Mouse and keys
 * share one path (decide()), and the cursor rule is RowCursor.afterDecision: after any
 * decision the cursor is on the next undecided row; the category dialog never moves it.
 * z (or Ctrl/Cmd+Z) undoes the last action on this clip, whichever row it was on. */
import { KeyMap, RowCursor, isTyping } from "./keys.js";
import { toast } from "./toast.js";
import { Outbox, refusal } from "./outbox.js";
import { LabelSearch } from "./search.js";
import { keyLeaving } from "./probe.js";
import { getPlayer } from "./player.js";
import { focusClipNote, mountClipNote } from "./clip_note.js";
import { finishClip, prefetchPage, swapClip } from "./nextclip.js";

const $ = (id) => document.getElementById(id);
document.addEventListener("review:toast", (ev) => toast(ev.detail));

const outbox = new Outbox({ onChange: (o) => showUnsaved(o) });
const keymap = new KeyMap();
let screen = null;  // the mounted clip

function showUnsaved(o) {
  const banner = $("unsaved-banner");
  if (!banner) return;
  const n = o.size;
  banner.hidden = !(n && o.failing);
  banner.querySelector("[data-slot=count]").textContent =
    n + " change" + (n === 1 ? "" : "s") + " not saved";
}

class ReviewScreen {
  constructor(root) {
    this.root = root;
    this.dialogMid = null;
    this.lastDecidedMid = null;
    this.nextArmed = false;
    this.nextWanted = false;
    this.history = [];        // this clip's actions, newest last: {mid, kind}
    this.pending = new Map();  // mid -> queued requests for that row
    this.search = new LabelSearch({
      input: $("label-search"), results: $("search-results"),
      onChoose: (hit) => this.addLabel(hit),
      onLeave: () => this.cursor.refresh(),
    });
    this.cursor = new RowCursor({
      rows: () => Array.from(document.querySelectorAll("#label-rows tr[data-mid]")),
      isOpen: (r) => !r.dataset.verdict && !r.dataset.pending,
      keyOf: (r) => r.dataset.mid,
    });
    this.cursor.ensure();
    this.bindDom();
  }

  rowByMid(mid) { return this.cursor.byKey(mid); }
  undecidedRows() { return this.cursor.rows().filter((r) => this.cursor.isOpen(r)); }

  /* --- saving ------------------------------------------------------------------------ */

  /* Queue a POST for a row; its answer (the row partial) replaces the row. */
  saveRow(mid, url, body, { kind, onSaved } = {}) {
    this.pending.set(mid, (this.pending.get(mid) || 0) + 1);
    this.markRow(mid);
    return outbox.send({
      url, body,
      onState: (state, info) => {
        const row = this.rowByMid(mid);
        if (state === "retrying") {
          if (row) row.dataset.unsaved = "1";
          this.markRow(mid);
          return;
        }
        const left = (this.pending.get(mid) || 1) - 1;
        if (left) this.pending.set(mid, left); else this.pending.delete(mid);
        if (state === "saved") {
          info.response.text().then((html) => {
            this.swapRow(mid, html, info.response);
            if (info.retried && !outbox.size) toast("Saved: every change reached the server.");
            if (onSaved) onSaved();
          });
        } else {
          info.response.text().then((text) => {
            toast("Not saved (" + kind + "): " + info.response.status + " " + text.slice(0, 120));
            this.markRow(mid);
          });
        }
      },
    }).catch(() => {});
  }

  markRow(mid) {
    const row = this.rowByMid(mid);
    if (!row) return;
    const n = this.pending.get(mid) || 0;
    if (!n) { delete row.dataset.pending; delete row.dataset.unsaved; }
    else if (!row.dataset.pending) row.dataset.pending = "1";
    let flag = row.querySelector(".unsaved-flag");
    if (row.dataset.unsaved && !flag) {
      flag = document.createElement("span");
      flag.className = "unsaved-flag";
      flag.setAttribute("role", "status");
      flag.textContent = "not saved — retrying";
      row.querySelector("td.decide").appendChild(flag);
    } else if (!row.dataset.unsaved && flag) flag.remove();
  }

  swapRow(mid, html, response) {
    const row = this.rowByMid(mid);
    if (!row) return;
    const wasCurrent = this.cursor.key === mid;
    if ((response.headers.get("HX-Reswap") || "") === "delete") {
      // An added label undone: its row goes; the out-of-band flags still apply.
      const next = wasCurrent ? (this.cursor.nextOpen(row) || row.previousElementSibling || row.nextElementSibling) : null;
      row.remove();
      if (html.trim()) window.htmx.swap(document.body, html, { swapStyle: "none" });
      if (next) this.cursor.set(next);
      return;
    }
    window.htmx.swap(row, html, { swapStyle: "outerHTML" });
    this.markRow(mid);
    if (this.cursor.key) this.cursor.refresh({ focus: !this.busy() });
  }

  busy() {
    const a = document.activeElement;
    return isTyping(a) || !$("category-dialog").hidden;
  }

  /* --- decisions ----------------------------------------------------------------------- */

  decide(row, verdict) {
    if (!row) return;
    this.disarmNext();
    const mid = row.dataset.mid;
    const b = row.querySelector('button[data-verdict="' + verdict + '"]');
    if (!b) return;
    // Shown at once; the row's partial replaces it when saved.
    row.querySelectorAll("button[data-verdict]").forEach((x) =>
      x.setAttribute("aria-pressed", x === b ? "true" : "false"));
    row.classList.remove("v-accept", "v-reject", "v-unsure");
    row.classList.add("v-" + verdict);
    this.lastDecidedMid = mid;
    this.history.push({ mid, kind: "decision" });
    this.saveRow(mid, b.form.action, { verdict }, { kind: "decision" });
    this.cursor.afterDecision(row);
  }

  acceptRest() {
    const rest = this.undecidedRows();
    if (!rest.length) { toast("Every row is decided."); return; }
    this.disarmNext();
    rest.forEach((r) => {
      const b = r.querySelector('button[data-verdict="accept"]');
      r.classList.add("v-accept");
      b.setAttribute("aria-pressed", "true");
      this.history.push({ mid: r.dataset.mid, kind: "decision" });
      this.saveRow(r.dataset.mid, b.form.action, { verdict: "accept" }, { kind: "decision" });
    });
    this.cursor.afterDecision(rest[rest.length - 1]);
    toast("Accepted " + rest.length + " undecided row" + (rest.length === 1 ? "" : "s") + ".");
  }

  /* The last action on this clip, whichever row: its row's latest change is reverted. */
  undo() {
    let entry = this.history.pop();
    while (entry && !this.rowByMid(entry.mid)) entry = this.history.pop();
    let row = entry ? this.rowByMid(entry.mid) : null;
    if (!row) {
      // Nothing done on this visit: the row under the cursor, if it has a change to revert.
      row = this.cursor.current();
      if (!row || !row.querySelector('[data-action="undo"]')) { toast("Nothing to undo on this clip."); return; }
    }
    this.disarmNext();
    this.cursor.set(row);
    this.saveRow(row.dataset.mid, row.dataset.undoUrl, {}, { kind: "undo" });
    toast("Undone: " + row.dataset.name);
  }

  /* --- error category and note ------------------------------------------------------ */

  openCategory(row) {
    if (!row) {
      // The cursor moved on after a / r / u: e means the row just decided.
      row = this.cursor.ensure();
      const last = this.rowByMid(this.lastDecidedMid);
      if (row && !row.dataset.verdict && !row.dataset.pending && last) row = last;
    }
    if (!row) return;
    if (!row.dataset.verdict && !row.dataset.pending) { toast("Decide on this label first (a, r or u)."); return; }
    const dlg = $("category-dialog");
    this.dialogMid = row.dataset.mid;
    dlg.querySelector('[data-slot="label"]').textContent = row.dataset.name;
    dlg.dataset.disagrees = row.dataset.disagrees;
    $("category-note").value = row.dataset.note || "";
    const chosen = row.dataset.category || "";
    dlg.querySelectorAll("button[data-category]").forEach((b) => {
      const on = chosen !== "" && b.dataset.category === chosen;
      b.classList.toggle("is-active", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
    dlg.hidden = false;
    (dlg.querySelector("button.is-active") || dlg.querySelector("button[data-category]")).focus();
  }

  /* Closing never moves the cursor: it stays where the cursor rule put it. */
  closeCategory() {
    $("category-dialog").hidden = true;
    this.dialogMid = null;
    const row = this.cursor.current();
    if (row) this.cursor.set(row);
  }

  saveCategory(categoryId) {
    const mid = this.dialogMid;
    const row = this.rowByMid(mid);
    const note = $("category-note").value;
    this.closeCategory();
    if (!row) return;
    row.dataset.category = categoryId;
    row.dataset.note = note;
    this.history.push({ mid, kind: "category" });
    this.saveRow(mid, row.dataset.categoryUrl, { error_category: categoryId, note }, { kind: "note" });
  }

  dialogKey(ev) {
    if (ev.key === "Escape") { ev.preventDefault(); this.closeCategory(); return; }
    if (isTyping(ev.target)) {
      if (ev.key === "Enter") {
        // Enter in the note saves the note with the chosen (or stored) category.
        ev.preventDefault();
        const active = $("category-dialog").querySelector("button.is-active");
        const row = this.rowByMid(this.dialogMid);
        this.saveCategory(active ? active.dataset.category : (row && row.dataset.category) || "");
      }
      return;
    }
    if (/^[0-9]$/.test(ev.key)) {
      const b = $("category-dialog").querySelector('button[data-key="' + ev.key + '"]');
      if (b) { ev.preventDefault(); this.saveCategory(b.dataset.category); }
    }
  }

  /* --- adding a label (search.js finds it) ------------------------------------------ */

  addLabel({ url, label, mid, name }) {
    $("add-refused").hidden = true;
    // Queued like a decision (in order, retried); the answer is the whole table body.
    outbox.send({ url, body: { label }, onState: (state, info) => {
      if (state === "retrying") { toast("Adding " + name + ": not saved — retrying"); return; }
      if (state !== "saved") { info.response.text().then((t) => toast("Not added: " + t.slice(0, 120))); return; }
      const refused = refusal(info.response);
      if (refused) {
        const g = $("add-refused");
        g.textContent = refused;
        g.hidden = false;
        toast(refused);
        this.search.focus();
        return;
      }
      info.response.text().then((html) => {
        window.htmx.swap($("label-rows"), html, { swapStyle: "outerHTML" });
        const row = this.rowByMid(mid);
        if (row) {
          this.history.push({ mid, kind: "add" });
          this.lastDecidedMid = mid;
          this.cursor.set(row);
          toast("Added and accepted: " + row.dataset.name);
        } else this.cursor.refresh();
      });
    } }).catch(() => {});
  }

  /* --- next clip --------------------------------------------------------------------- */

  disarmNext() {
    this.nextArmed = false;
    const g = $("next-guard");
    if (g) g.hidden = true;
  }
  /* "n" never finishes a clip with undecided rows silently: the first press says how many
   * and asks for "n" again (or Esc). */
  guardNext() {
    const open = this.undecidedRows().length;
    if (!open || this.nextArmed) return true;
    this.nextArmed = true;
    const g = $("next-guard");
    if (g) {
      g.querySelector("[data-slot=count]").textContent =
        open + " label" + (open === 1 ? " is" : "s are") + " still undecided";
      g.hidden = false;
    }
    return false;
  }
  goNext() {
    const f = $("next-form");
    if (!f || f.dataset.sent) return;
    if (!this.nextWanted && !this.guardNext()) return;
    if (outbox.size) {
      // Leave only once every change of this clip is saved: leaving would drop them.
      if (!this.nextWanted) {
        this.nextWanted = true;
        toast("Waiting for " + outbox.size + " unsaved change" + (outbox.size === 1 ? "" : "s") + ", then on to the next clip…");
        outbox.whenEmpty().then(() => { if (this.nextWanted) this.goNext(); });
      }
      return;
    }
    this.nextWanted = false;
    f.dataset.sent = "1";
    keyLeaving("review.navKeyAt");
    // In place (nextclip.js): finish with one POST, swap the prepared next clip in. Should
    // that fail, the form's own POST loads the next clip as a full page.
    const from = this.root.dataset.clip;
    finishClip(f).then(async (answer) => {
      if (!answer.clip) { window.location.assign(answer.url); return; }
      const root = await swapClip(answer.url);
      if (!root) return;
      mountReview(root);
      if (answer.message) toast(answer.message);
      prepareNext(root, from);
    }).catch(() => f.submit());
  }

  /* --- wiring ------------------------------------------------------------------------ */

  bindDom() {
    const nf = $("next-form");
    if (nf) nf.addEventListener("submit", (ev) => {
      if (nf.dataset.sent) return;
      ev.preventDefault();
      this.goNext();
    });
    // Clicks on the rows' buttons take the same path as the keys (no htmx on them).
    this.root.addEventListener("click", (ev) => {
      const t = ev.target;
      const row = t.closest("#label-rows tr[data-mid]");
      const verdict = t.closest("button[data-verdict]");
      if (row && verdict) { ev.preventDefault(); this.decide(row, verdict.dataset.verdict); return; }
      if (row && t.closest('[data-action="undo"]')) {
        ev.preventDefault();
        this.disarmNext();
        this.cursor.set(row);
        this.saveRow(row.dataset.mid, row.dataset.undoUrl, {}, { kind: "undo" });
        return;
      }
      if (row && t.closest('[data-action="category"]')) { ev.preventDefault(); this.openCategory(row); return; }
      if (row) this.cursor.set(row, { focus: !t.closest("button, a, input, select") });
    });
  }

  /* Keys the page's state claims before the key map: the dialog, the help, text fields. */
  preKey(ev) {
    if (!$("category-dialog").hidden) { this.dialogKey(ev); return true; }
    if (!$("help").hidden) {
      if (ev.key === "Escape" || ev.key === "?") { ev.preventDefault(); toggleHelp(false); }
      return true;
    }
    if (isTyping(ev.target)) {
      if (ev.target.id === "label-search") this.search.key(ev);
      else if (ev.key === "Escape") ev.target.blur();
      return true;
    }
    return false;
  }
}

function toggleHelp(show) {
  const h = $("help");
  h.hidden = show === undefined ? !h.hidden : !show;
  if (!h.hidden) h.querySelector(".modal-box").focus();
}

function withPlayer(fn) {
  const p = getPlayer();
  return p ? fn(p) : false;
}

/* The clip page's keys: declared once, the help overlay drawn from this table. */
function bindKeys() {
  const s = () => screen;
  keymap
    .bind(["j", "ArrowDown"], "next label row", () => s().cursor.move(1), { group: "Labels" })
    .bind(["k", "ArrowUp"], "previous label row", () => s().cursor.move(-1))
    .bind("a", "accept the row, move to the next undecided row", () => s().decide(s().cursor.ensure(), "accept"))
    .bind("r", "reject the row, move on", () => s().decide(s().cursor.ensure(), "reject"))
    .bind("u", "unsure, move on", () => s().decide(s().cursor.ensure(), "unsure"))
    .bind("A", "accept every undecided row of the clip", () => s().acceptRest())
    .bind(["z", "Mod+z"], "undo the last action on this clip (again: further back)", () => s().undo())
    .bind("e", "error category and note for the decision just made", () => s().openCategory())
    .bind("/", "add a label: search, ↑/↓ pick, Enter adds, Esc leaves", () => s().search.focus())
    .bind("c", "note on the whole clip: Enter saves, Esc leaves", () => focusClipNote())
    .bind(["n", "Enter"], "finish this clip, next clip (with undecided rows: n again, or Esc)", (ev) => {
      if (ev.key === "Enter" && ev.target.closest && ev.target.closest("button, a[href], summary")) return false;
      s().goNext();
    })
    .bind("Escape", "dismiss the undecided warning", () => {
      if (!s().nextArmed) return false;
      s().disarmNext();
    })
    .bind(" ", "play / pause", () => withPlayer((p) => p.togglePlay()), { group: "Audio" })
    .bind("ArrowLeft", "seek 2 s back", () => withPlayer((p) => p.seekBy(-2)))
    .bind("ArrowRight", "seek 2 s forward", () => withPlayer((p) => p.seekBy(2)))
    .bind("0", "replay from the start", () => withPlayer((p) => p.replay()))
    .bind("l", "loop on / off", () => withPlayer((p) => toast(p.toggleLoop() ? "Loop on" : "Loop off")))
    .bind("[", "slower", () => withPlayer((p) => toast("Speed " + p.changeSpeed(-1))))
    .bind("]", "faster", () => withPlayer((p) => toast("Speed " + p.changeSpeed(1))))
    .bind("s", "view: waveform + spectrogram, waveform, spectrogram", () => withPlayer((p) => toast("View: " + p.cycleView())))
    .bind("f", "spectrogram frequency scale: mel / linear", () => withPlayer((p) => toast("Frequency scale: " + p.toggleScale())))
    .bind(["+", "="], "zoom in (or the mouse wheel over the player)", () => withPlayer((p) => p.zoomBy(2)))
    .bind("-", "zoom out", () => withPlayer((p) => p.zoomBy(0.5)))
    .bind("?", "show / hide this help", () => toggleHelp(), { group: "Help" });
  keymap.renderHelp(document.querySelector("#help table.keys"));
  // Once per page (the dialogs outlive a clip swapped in place): the mounted clip's.
  document.addEventListener("click", (ev) => {
    const t = ev.target;
    if (!screen) return;
    const cat = t.closest("#category-dialog button[data-category]");
    if (cat) screen.saveCategory(cat.dataset.category);
    if (t.id === "help-button" || t.closest("#help-button")) toggleHelp(true);
    if (t.classList.contains("modal")) {
      if (t.id === "help") toggleHelp(false); else screen.closeCategory();
    }
  });
  document.addEventListener("keydown", (ev) => {
    if (!screen) return;
    if (screen.preKey(ev)) return;
    keymap.handle(ev);
  });
}

export function mountReview(root) {
  rememberFold();
  screen = new ReviewScreen(root);
  return screen;
}

/* Once the clip on screen is ready, its successor's page is fetched in the background.
 * A page fetched before the previous clip was finished may name that clip as its
 * successor (the queue's peek could not skip it yet): then ask this clip's page again. */
function prepareNext(root, finishedClip) {
  const player = getPlayer();
  if (!player) return;
  player.onReady(() => {
    if (root !== $("review")) return;
    if (finishedClip && root.dataset.nextClip === String(finishedClip)) {
      fetch(window.location.href, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : ""))
        .then((html) => {
          const fresh = html && new DOMParser().parseFromString(html, "text/html").getElementById("review");
          if (!fresh || root !== $("review")) return;
          ["nextClip", "nextPage", "nextAudio"].forEach((k) => {
            if (fresh.dataset[k]) root.dataset[k] = fresh.dataset[k]; else delete root.dataset[k];
          });
          player.box.dataset.nextAudio = root.dataset.nextAudio || "";
          player.preloadNext();
          prefetchPage(root.dataset.nextPage);
        }).catch(() => {});
      return;
    }
    prefetchPage(root.dataset.nextPage);
  });
}

/* Folding "What the models said" is remembered (per browser). */
function rememberFold() {
  const d = $("outputs");
  if (!d) return;
  const saved = localStorage.getItem("review.outputs.open");
  if (saved !== null) d.open = saved === "1";
  d.addEventListener("toggle", () => localStorage.setItem("review.outputs.open", d.open ? "1" : "0"));
}

const root = $("review");
if (root) {
  bindKeys();
  mountClipNote({ outbox, onSent: () => screen && screen.cursor.refresh() });
  mountReview(root);
  prepareNext(root, null);
  // Back / Forward between clips swapped in place: the clip's page afresh (its saved
  // verdicts), once every change of the clip on screen is saved.
  history.replaceState({ reviewClip: root.dataset.clip }, "");
  window.addEventListener("popstate", (ev) => {
    if (!ev.state || !ev.state.reviewClip) return;
    outbox.whenEmpty().then(() => swapClip(window.location.href, { push: false, fresh: true }))
      .then((r) => { if (r) { mountReview(r); prepareNext(r, null); } });
  });
  // A page restored from the back/forward cache shows the DOM as it was left; fetch it
  // again so it shows what is saved.
  window.addEventListener("pageshow", (ev) => { if (ev.persisted) window.location.reload(); });
  // Leaving with changes not yet saved: the browser asks first.
  window.addEventListener("beforeunload", (ev) => {
    if (outbox.size && !($("next-form") && $("next-form").dataset.sent)) { ev.preventDefault(); ev.returnValue = ""; }
  });
}
