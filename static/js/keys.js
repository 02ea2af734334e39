/* The one key map of the review screens (clip page, rapid mode, adjudication).
 *
 * Each page builds a KeyMap: every key is declared once, with the label the help overlay
 * shows and the handler it runs, so the help can never drift from what the keys do
 * (renderHelp draws the overlay's table from the same entries). isTyping() is the one
 * "is the user typing in a field" check. RowCursor is the one cursor rule: after any
 * decision (key, click, dialog, bulk) the cursor is on the next undecided row, or stays on
 * the last row when none is left; nothing else moves it back.
 *
 * Module boundaries of the review screen (ES modules, no inline script; see README
 * "Review screen front end"):
 *   keys.js    key map, help overlay, isTyping, RowCursor      (this file)
 *   toast.js   the one toast
 *   outbox.js  decisions (and undo, add, note) saved in order, retried with backoff
 *   player.js  waveform + spectrogram player (window.ReviewPlayer), load(url) for a new clip
 *   probe.js   benchmark probes, only with ?probe=1 (or sessionStorage "review.probe")
 *   review.js  the full clip screen: mountReview(root) binds one clip's rows
 *   rapid.js   rapid mode
 *   curation/adjudicate.js  the adjudication page
 *   find.js    search result lists (find page, clips like this, class sweep)
 *   study.js   the blind quality-study screen */

const NAMES = {
  ArrowDown: "↓", ArrowUp: "↑", ArrowLeft: "←", ArrowRight: "→", " ": "Space",
  Escape: "Esc", Enter: "Enter", "Mod+z": "Ctrl+Z / ⌘Z",
};

export function keyName(key) {
  if (NAMES[key]) return NAMES[key];
  if (key.length === 1 && key >= "A" && key <= "Z") return key + " (shift+" + key.toLowerCase() + ")";
  return key;
}

/* True when keys belong to a text field (or a select, whose letters pick options). A
 * checkbox takes no letters, so a list with checkboxes (find page) keeps its keys. */
export function isTyping(el) {
  return !!(el && el.matches && (el.isContentEditable
    || el.matches("input:not([type=checkbox]), textarea, select")));
}

/* True when Enter / Space belong to a focused control (a button, link, summary). */
export function onControl(el) {
  return !!(el && el.matches && el.matches("button, a[href], summary, audio, iframe"));
}

function combo(ev) {
  if (ev.altKey) return null;
  if (ev.ctrlKey || ev.metaKey) return ev.key.length === 1 ? "Mod+" + ev.key.toLowerCase() : null;
  return ev.key;
}

export class KeyMap {
  constructor() {
    this.entries = [];
    this.byKey = new Map();
  }

  /* keys: one key or a list (all do the same); label: what the help says; run(ev). */
  bind(keys, label, run, options = {}) {
    const entry = { keys: [].concat(keys), label, run, help: options.help !== false,
                    group: options.group || "" };
    this.entries.push(entry);
    entry.keys.forEach((k) => {
      if (this.byKey.has(k)) throw new Error("key declared twice: " + k);
      this.byKey.set(k, entry);
    });
    return this;
  }

  /* Runs the entry of the key; true when one ran (the key is then consumed). A handler
   * that returns false declines the key (the browser keeps it). */
  handle(ev) {
    const k = combo(ev);
    const entry = k && this.byKey.get(k);
    if (!entry) return false;
    if (entry.run(ev) === false) return false;
    ev.preventDefault();
    return true;
  }

  /* A one-line key hint (rapid mode, adjudication), from the same entries. */
  renderInline(el) {
    if (!el) return;
    el.replaceChildren();
    this.entries.filter((e) => e.help).forEach((e, i) => {
      if (i) el.append(" · ");
      e.keys.forEach((k, j) => {
        if (j) el.append("/");
        const kbd = document.createElement("kbd");
        kbd.textContent = keyName(k);
        el.appendChild(kbd);
      });
      el.append(" " + e.label);
    });
  }

  /* The help overlay's table, from the same entries the keys run. */
  renderHelp(table) {
    if (!table) return;
    table.replaceChildren();
    let group = null;
    for (const e of this.entries) {
      if (!e.help) continue;
      if (e.group && e.group !== group) {
        group = e.group;
        const tr = table.insertRow();
        const th = document.createElement("th");
        th.colSpan = 2;
        th.scope = "colgroup";
        th.textContent = group;
        tr.appendChild(th);
      }
      const tr = table.insertRow();
      const keys = tr.insertCell();
      e.keys.forEach((k, i) => {
        if (i) keys.append(" / ");
        const kbd = document.createElement("kbd");
        kbd.textContent = keyName(k);
        keys.appendChild(kbd);
      });
      tr.insertCell().textContent = e.label;
    }
  }
}

/* The current row of a table of decisions, and the cursor rule. rowsFn() lists the rows;
 * isOpen(row) says whether a row still needs a decision. The cursor is remembered by a
 * key (rows are replaced by swaps), read from keyOf(row). */
export class RowCursor {
  constructor({ rows, isOpen, keyOf, onMove }) {
    this.rowsFn = rows;
    this.isOpen = isOpen;
    this.keyOf = keyOf;
    this.onMove = onMove || (() => {});
    this.key = null;
  }

  rows() { return this.rowsFn(); }
  byKey(key) { return key == null ? null : this.rows().find((r) => this.keyOf(r) === key) || null; }
  current() { return this.byKey(this.key); }

  set(row, { focus = true } = {}) {
    this.rows().forEach((r) => {
      const on = r === row;
      r.classList.toggle("is-current", on);
      r.setAttribute("tabindex", on ? "0" : "-1");
      if (on) r.setAttribute("aria-current", "true"); else r.removeAttribute("aria-current");
    });
    this.key = row ? this.keyOf(row) : null;
    if (row && focus) {
      row.focus({ preventScroll: true });
      // The only automatic scroll: keep the current row visible.
      row.scrollIntoView({ block: "nearest" });
    }
    this.onMove(row);
  }

  /* Re-applies the mark after a swap replaced the row (same key, new element). */
  refresh(options) { const row = this.current(); if (row) this.set(row, options); return row; }

  ensure() {
    let row = this.current();
    if (!row) {
      const rs = this.rows();
      row = rs.find((r) => this.isOpen(r)) || rs[0] || null;
      if (row) this.set(row);
    }
    return row;
  }

  move(delta) {
    const rs = this.rows();
    if (!rs.length) return;
    let i = rs.indexOf(this.current());
    i = i < 0 ? 0 : Math.min(rs.length - 1, Math.max(0, i + delta));
    this.set(rs[i]);
  }

  nextOpen(row) {
    const rs = this.rows(), i = rs.indexOf(row);
    for (let k = 1; k <= rs.length; k++) {
      const r = rs[(i + k) % rs.length];
      if (r !== row && this.isOpen(r)) return r;
    }
    return null;
  }

  /* THE cursor rule: after a decision on `row` (by any means) the cursor goes to the next
   * undecided row; with none left it stays on the decided row. */
  afterDecision(row) {
    const next = this.nextOpen(row);
    this.set(next || row);
  }
}
