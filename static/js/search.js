/* "Add a label": the class search of the clip page and of rapid mode's "Anything
 * missing?" (markup: #label-search with htmx hx-get into #search-results, hits from
 * templates/review/_search_results.html). The first class that can be added is
 * pre-selected (never an abstract one); results open above the box when there is no room
 * below; Enter while results are loading waits for them and never submits a form.
 * onChoose(hit) adds the chosen class (through the page's outbox). */
export class LabelSearch {
  constructor({ input, results, onChoose, onLeave }) {
    this.input = input;
    this.results = results;
    this.onChoose = onChoose;
    this.onLeave = onLeave || (() => {});
    this.pendingEnter = false;
    document.body.addEventListener("htmx:afterSettle", (ev) => {
      const target = ev.detail && ev.detail.target;
      if (target && this.results.contains(target)) this.arrived();
      else if (target === this.results) this.arrived();
    });
    this.results.addEventListener("click", (ev) => {
      const hit = ev.target.closest("button.hit");
      if (!hit) return;
      ev.preventDefault();
      this.choose(hit);
    });
  }

  options() { return Array.from(this.results.querySelectorAll("button.hit")); }
  fresh() {
    const list = this.results.querySelector(".search-list");
    return !!list && list.dataset.q === this.input.value;
  }
  highlight(delta, index) {
    const opts = this.options();
    if (!opts.length) return;
    let i = opts.findIndex((o) => o.classList.contains("is-active"));
    i = index !== undefined ? index : Math.min(opts.length - 1, Math.max(0, i < 0 ? 0 : i + delta));
    opts.forEach((o, j) => {
      o.classList.toggle("is-active", j === i);
      o.setAttribute("aria-selected", j === i ? "true" : "false");
    });
    if (i >= 0) opts[i].scrollIntoView({ block: "nearest" });
  }
  arrived() {
    const opts = this.options();
    opts.forEach((o) => { o.classList.remove("is-active"); o.setAttribute("aria-selected", "false"); });
    const first = opts.findIndex((o) => !o.classList.contains("not-addable"));
    if (first >= 0) this.highlight(0, first);
    this.results.classList.remove("above");
    const box = this.input.getBoundingClientRect();
    const need = Math.min(this.results.scrollHeight, 320);
    if (opts.length && box.bottom + need > window.innerHeight && box.top > window.innerHeight - box.bottom) {
      this.results.classList.add("above");
    }
    if (this.pendingEnter && this.fresh()) { this.pendingEnter = false; this.chooseActive(); }
  }
  chooseActive() {
    const opts = this.options();
    const b = opts.find((o) => o.classList.contains("is-active"));
    if (!b) {
      // Nothing addable is pre-selected: Enter explains instead of adding something else.
      const msg = opts.length ? "No class here can be added: pick one with ↑/↓ to see why." : "No class matches: nothing to add.";
      document.dispatchEvent(new CustomEvent("review:toast", { detail: msg }));
      return;
    }
    this.choose(b);
  }
  choose(hit) {
    const form = hit.closest("form");
    const detail = { url: form.action, label: hit.dataset.label, mid: hit.dataset.mid,
                     name: (hit.querySelector(".hit-name") || hit).textContent.trim() };
    this.clear();
    this.onChoose(detail);
  }
  clear() {
    this.input.value = "";
    this.results.replaceChildren();
    this.results.classList.remove("above");
    this.pendingEnter = false;
  }
  focus() { this.input.focus(); this.input.select(); }
  /* Keys while the search box has the focus; true when the key was taken. */
  key(ev) {
    if (ev.key === "ArrowDown") { ev.preventDefault(); this.highlight(1); return true; }
    if (ev.key === "ArrowUp") { ev.preventDefault(); this.highlight(-1); return true; }
    if (ev.key === "Enter") {
      ev.preventDefault();
      if (!this.input.value.trim()) return true;
      if (this.fresh()) this.chooseActive();
      else { this.pendingEnter = true; window.htmx.trigger(this.input, "search"); }
      return true;
    }
    if (ev.key === "Escape") {
      ev.preventDefault();
      this.clear();
      this.input.blur();
      this.onLeave();
      return true;
    }
    return false;
  }
}
