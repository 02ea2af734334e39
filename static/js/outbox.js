/* The save queue of the review screens: every decision, undo, added label and note is a
 * POST that goes out in the order it was made, one at a time. When the server cannot be
 * reached (network error, 502/503/504, 500, 429) the request stays at the head of the
 * queue and is retried with backoff (Retry-After when the server sends one) until it is
 * answered, so nothing the reviewer did is lost and nothing overtakes it. A 4xx answer is
 * final (refused): it is reported, and the queue goes on.
 *
 * The page is told through callbacks (onState per item, onChange for the queue), never by
 * navigating: a failed background request never leaves the page. <body data-unsaved="N">
 * says how many are waiting (tests and the "n waits" guard read it). */

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && meta.content) return meta.content;
  try {
    const h = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    if (h["X-CSRFToken"]) return h["X-CSRFToken"];
  } catch (e) { /* not JSON */ }
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function transient(status) {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
const REQUEST_TIMEOUT_MS = 15000;

export class Outbox {
  constructor({ onChange } = {}) {
    this.items = [];
    this.running = false;
    this.onChange = onChange || (() => {});
    this.waiters = [];
    this.failing = false;
  }

  get size() { return this.items.length; }

  /* Queue a POST. body: URLSearchParams or an object. htmx: true sends HX-Request so the
   * view answers with the partial it would give htmx. onState(state, info) gets
   * "retrying" (with the error), "saved" (with the Response) or "refused" (with the
   * Response). Returns a promise of the saved Response (rejected when refused). */
  send({ url, body, htmx = true, onState }) {
    return new Promise((resolve, reject) => {
      const params = body instanceof URLSearchParams ? body : new URLSearchParams(body || {});
      this.items.push({ url, body: params.toString(), htmx, onState: onState || (() => {}),
                        resolve, reject, tries: 0 });
      this.changed();
      this.pump();
    });
  }

  /* Resolves when every queued request has been answered. */
  whenEmpty() {
    if (!this.items.length) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  changed() {
    document.body.dataset.unsaved = String(this.items.length);
    this.onChange(this);
    if (!this.items.length) {
      const w = this.waiters;
      this.waiters = [];
      w.forEach((f) => f());
    }
  }

  async pump() {
    if (this.running) return;
    this.running = true;
    try {
      while (this.items.length) {
        const item = this.items[0];
        let response = null, error = null;
        try {
          const headers = { "X-CSRFToken": csrfToken(),
                            "Content-Type": "application/x-www-form-urlencoded" };
          if (item.htmx) headers["HX-Request"] = "true";
          // A request left hanging (a connection cut half-way) would hold the queue: after
          // REQUEST_TIMEOUT_MS it counts as failed and is sent again (a decision, undo or
          // finish sent twice sets the same state).
          const ctrl = new AbortController();
          const timer = setTimeout(() => ctrl.abort(), REQUEST_TIMEOUT_MS);
          try {
            response = await fetch(item.url, { method: "POST", credentials: "same-origin",
                                                redirect: "manual", headers, body: item.body,
                                                signal: ctrl.signal });
          } finally {
            clearTimeout(timer);
          }
        } catch (e) {
          error = e;
        }
        const status = response ? (response.type === "opaqueredirect" ? 302 : response.status) : 0;
        if (error || transient(status)) {
          item.tries += 1;
          this.failing = true;
          item.onState("retrying", { error: error ? "the server cannot be reached" : "HTTP " + status,
                                     tries: item.tries });
          this.onChange(this);
          const after = response && parseFloat(response.headers.get("Retry-After") || "");
          const wait = isFinite(after) && after > 0 ? after * 1000
            : BACKOFF_MS[Math.min(item.tries - 1, BACKOFF_MS.length - 1)];
          await new Promise((r) => setTimeout(r, wait));
          continue;
        }
        this.items.shift();
        if (status >= 400) {
          item.onState("refused", { response });
          item.reject(Object.assign(new Error("HTTP " + status), { response }));
        } else {
          const wasRetried = item.tries > 0;
          item.onState("saved", { response, retried: wasRetried });
          item.resolve(response);
        }
        if (!this.items.length) this.failing = false;
        this.changed();
      }
    } finally {
      this.running = false;
    }
  }
}

/* The message of a refused "add a label" (the view answers 200 with an HX-Trigger event
 * review:label-refused and swaps nothing); null when it was not refused. */
export function refusal(response) {
  const trigger = response.headers.get("HX-Trigger");
  if (!trigger || !trigger.includes("review:label-refused")) return null;
  try { return JSON.parse(trigger)["review:label-refused"].message; } catch (e) { return "This class cannot be added."; }
}
