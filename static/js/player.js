/* The clip player: waveform, spectrogram (Hz axis, mel or linear), time axis, zoom, hover
 * time, playhead and click-to-seek, all drawn by wavesurfer.js 8 (vendored under
 * static/vendor/) over one <audio> element without native controls, so the page has one
 * clock.
 *
 * Markup: templates/review/_player.html (a [data-player] box). The full clip screen, rapid
 * mode and the curators' adjudication page include it; review.js, rapid.js and
 * adjudicate.js drive it through getPlayer() (also window.ReviewPlayer, which tests read).
 * load(url, nextUrl, sampleRate) puts another clip into the same player (rapid mode; the
 * in-place next clip, which prepare(url, sampleRate) has made ready off screen before). No inline script or style: wavesurfer's shadow-DOM <style> gets the
 * nonce of <meta name="csp-nonce"> when the page has one.
 *
 * Truth of the picture: audio is decoded at the file's own rate (data-sample-rate; at least
 * 16 kHz, at most 32 kHz), so the frequency axis runs to the file's Nyquist frequency, which
 * the box states as data-max-hz; the waveform is drawn in true amplitude (not normalised)
 * with its peak level in dBFS beside it. Player controls hand the keyboard back to the page
 * after use (blur), so every shortcut works after a click or the Speed select.
 *
 * The next clip in <= 150 ms (issue 18). Measured first (bench/bench_review_browser.py
 * --verbose, ms after "n", load average about 4 on 2 cores): the finishing POST answered at
 * 75-98, the page was swapped in at 77-104, then the same <audio> reloaded (canplay at
 * 125-252), decoded (134-261), drew the waveform (145-278) and, after the spectrogram
 * plugin's fixed 50 ms debounce, computed the FFT on the main thread and drew it (251-356):
 * p95 343. Three quarters of that is loading, decoding and the FFT of a file the browser
 * already holds, so the player now prepares the next clip while the current one plays: a
 * second, hidden wavesurfer ("standby deck", prepare()) over its own <audio> loads, decodes
 * and draws the waveform and the spectrogram at the live one's width, and on "n" load()
 * moves it into place (swapIn) with nothing left to fetch, decode or compute: ready 8-32
 * ms after the POST's answer; p95 91-121 ms at load 3.7-7.4 (one run 200: a POST answered
 * after 230 ms). What remains on the way is the server's finishing POST.
 * With the spectrogram off the critical path, where it is computed only decides how long
 * the main thread is busy while the expert works on the current clip: on the main thread
 * the preparation made long tasks of 53-95 ms (keys wait behind them); with the plugin's
 * own Web Worker (useWebWorker; CSP worker-src 'self' blob:) none. A server-side
 * precomputed spectrogram (numpy, cached on disk) would also keep the FFT off this thread,
 * but it would re-implement the plugin's FFT, mel mapping and dB scaling in a second place
 * (the Hz axis is the plugin's), add an endpoint and a cache, and still parse and draw on
 * the main thread, to save time that is no longer on the way: the worker it is. */
import { lap, mark, sinceCarried } from "./probe.js";
import WaveSurfer from "../vendor/wavesurfer/wavesurfer.esm.js";
import HoverPlugin from "../vendor/wavesurfer/plugins/hover.esm.js";
import SpectrogramPlugin from "../vendor/wavesurfer/plugins/spectrogram.esm.js";
import TimelinePlugin from "../vendor/wavesurfer/plugins/timeline.esm.js";
import ZoomPlugin from "../vendor/wavesurfer/plugins/zoom.esm.js";

const VIEWS = ["both", "wave", "spec"];
const VIEW_NAMES = { both: "both", wave: "waveform", spec: "spectrogram" };
const VIEW_KEY = "review.player.view";
const SCALE_KEY = "review.player.scale";
const TALL_KEY = "review.player.tall";

/* The decode rate for a file's sample rate: its own, within 16..32 kHz. */
export function decodeRate(sampleRate) {
  const sr = parseInt(sampleRate, 10);
  if (!isFinite(sr) || sr <= 0) return 16000;
  return Math.max(16000, Math.min(32000, sr));
}
/* The highest frequency the spectrogram shows: the file's Nyquist frequency, or the
 * decode's when the file's rate is higher than the decode rate. */
export function maxHz(sampleRate) {
  const sr = parseInt(sampleRate, 10);
  const rate = decodeRate(sampleRate);
  return Math.round(Math.min(rate, isFinite(sr) && sr > 0 ? sr : rate) / 2);
}
/* A quarter of the viewport less the rest of the player, never below 112 px. */
function specHeight(tall) {
  const h = Math.max(112, Math.min(420, Math.round(window.innerHeight / 4 - 68)));
  return tall ? Math.min(640, h * 2) : h;
}

function fmt(t) {
  if (!isFinite(t) || t < 0) t = 0;
  const m = Math.floor(t / 60), s = t - 60 * m;
  return m + ":" + (s < 10 ? "0" : "") + s.toFixed(1);
}

/* The peak level of decoded audio in dBFS (-Infinity for silence; undefined for none). */
function peakDb(data) {
  if (!data) return undefined;
  let peak = 0;
  for (let c = 0; c < data.numberOfChannels; c++) {
    const ch = data.getChannelData(c);
    for (let i = 0; i < ch.length; i++) { const v = Math.abs(ch[i]); if (v > peak) peak = v; }
  }
  return peak > 0 ? 20 * Math.log10(peak) : -Infinity;
}

function cspNonce() {
  const meta = document.querySelector('meta[name="csp-nonce"]');
  const value = meta && (meta.nonce || meta.getAttribute("content"));
  return value || undefined;
}

// Absolute, as the media element reports its src: wavesurfer then keeps the element's own
// src instead of swapping in a blob: URL (which a CSP with media-src 'self' refuses).
function absolute(url) { return new URL(url, window.location.href).href; }

export class Player {
  constructor(box) {
    mark("player");
    this.box = box;
    this.status = box.querySelector("[data-status]");
    this.timeEl = box.querySelector("[data-time]");
    this.viewButton = box.querySelector('[data-action="view"]');
    this.playButton = box.querySelector('[data-action="play"]');
    this.loop = false;
    this.readyCallbacks = [];
    this.view = VIEWS.includes(localStorage.getItem(VIEW_KEY)) ? localStorage.getItem(VIEW_KEY) : "both";
    this.scale = localStorage.getItem(SCALE_KEY) === "linear" ? "linear" : "mel";
    this.tall = localStorage.getItem(TALL_KEY) === "1";
    this.sampleRate = box.dataset.sampleRate || "";
    box.dataset.maxHz = String(maxHz(this.sampleRate));
    this.standby = null;  // the next clip, prepared off screen (prepare())
    const audio = box.querySelector("audio[data-audio]");
    this.use(this.makeDeck(box.querySelector("[data-wave]"), audio, this.sampleRate));
    box.addEventListener("click", (ev) => {
      const b = ev.target.closest && ev.target.closest("button[data-action]");
      if (!b || !box.contains(b)) return;
      const act = b.dataset.action;
      if (act === "play") this.togglePlay();
      else if (act === "replay") this.replay();
      else if (act === "loop") this.toggleLoop();
      else if (act === "view") this.cycleView();
      else if (act === "zoom-in") this.zoomBy(2);
      else if (act === "zoom-out") this.zoomBy(0.5);
      else if (act === "scale") this.toggleScale();
      else if (act === "tall") this.toggleTall();
      // Give the keys back: a focused button would take Space (and Enter) for itself.
      b.blur();
    });
    const speed = box.querySelector("[data-speed]");
    if (speed) {
      speed.addEventListener("change", () => {
        this.ws.setPlaybackRate(parseFloat(speed.value), true);
        // A focused select eats letters (a, r, j pick options): hand the keys back.
        speed.blur();
      });
    }
    this.updateViewButton();
    this.updateScaleButton();
  }

  /* A deck: one wavesurfer (waveform, spectrogram, timeline, zoom, hover) over one <audio>
   * in its own container. The live deck is the clip on screen; a standby deck is the next
   * clip, loaded, decoded and drawn off screen while the current one plays, and swapped in
   * on "n" (load()). Events of a deck that is not live only update its own state. */
  makeDeck(container, audio, sampleRate) {
    const deck = { container, audio, url: absolute(audio.getAttribute("src")), sampleRate: sampleRate || "",
                   scale: this.scale, tall: this.tall, waveReady: false, specReady: false, failed: false };
    const live = () => this.deck === deck;
    deck.spectrogram = this.makeSpectrogram(deck.sampleRate);
    const ws = deck.ws = WaveSurfer.create({
      sampleRate: decodeRate(deck.sampleRate),
      minPxPerSec: this.ws ? this.ws.options.minPxPerSec || 0 : 0,  // a standby: the live zoom
      container,
      media: audio,
      url: deck.url,
      height: 56,
      waveColor: "#9aa8c7",
      progressColor: "#2456c9",
      cursorColor: "#c0392b",
      cursorWidth: 2,
      normalize: false,  // true amplitude: quiet hiss must look quiet (peak dBFS shown)
      dragToSeek: true,
      autoScroll: true,
      autoCenter: true,
      cspNonce: cspNonce(),
      fetchParams: { credentials: "same-origin" },
      plugins: [
        deck.spectrogram,
        TimelinePlugin.create({ height: 14, secondaryLabelOpacity: 0.5, style: { fontSize: "10px", color: "#5b6475" } }),
        ZoomPlugin.create({ scale: 0.25, maxZoom: 1000 }),
        HoverPlugin.create({ lineColor: "#1d2330", lineWidth: 1, labelBackground: "#1d2330",
                             labelColor: "#fff", labelSize: "11px", formatTimeCallback: fmt }),
      ],
    });
    ws.on("timeupdate", (t) => { if (live()) this.showTime(t); });
    ws.on("decode", () => {
      deck.peakDb = peakDb(ws.getDecodedData());  // a standby's too: shown when swapped in
      if (live()) { mark("decoded"); this.showPeak(); }
    });
    // The Hz labels scroll with the picture unless moved back by the scroll offset.
    ws.on("scroll", () => { if (live()) this.pinLabels(); });
    ws.on("zoom", () => { if (live()) requestAnimationFrame(() => this.pinLabels()); });
    ws.on("redraw", () => { if (live()) this.pinLabels(); });
    ws.on("ready", () => {
      deck.waveReady = true;
      if (!live()) return;
      mark("wave");
      this.waveShown();
      this.checkReady();
    });
    ws.on("error", (e) => {
      deck.failed = true;
      if (live() && this.status) { this.status.hidden = false; this.status.textContent = "No waveform (" + (e && e.message || e) + ")."; }
    });
    ws.on("play", () => { if (live()) this.playState(); });
    ws.on("pause", () => { if (live()) this.playState(); });
    ws.on("finish", () => { if (live() && this.loop) { ws.setTime(0); ws.play(); } });
    this.watchSpectrogram(deck);
    audio.addEventListener("canplay", () => { if (live()) { mark("canplay"); this.checkReady(); } });
    return deck;
  }
  /* Makes deck the one on screen (this.ws, this.audio and this.spectrogram are its). */
  use(deck) {
    this.deck = deck;
    this.ws = deck.ws;
    this.audio = deck.audio;
    this.spectrogram = deck.spectrogram;
  }
  get waveReady() { return this.deck.waveReady; }
  get specReady() { return this.deck.specReady; }
  /* The waveform of the live deck is drawn. */
  waveShown() {
    if (this.status) this.status.hidden = true;
    this.applyView();
    this.showTime(0);
  }

  makeSpectrogram(sampleRate = this.sampleRate) {
    return SpectrogramPlugin.create({
      labels: true, height: specHeight(this.tall), scale: this.scale, fftSamples: 512,
      useWebWorker: true,
      frequencyMin: 0, frequencyMax: maxHz(sampleRate),
      // roseus: dark background, bright for loud; rangeDB 80 keeps quiet events visible.
      colorMap: "roseus", gainDB: 20, rangeDB: 80,
      labelsBackground: "rgba(0, 0, 0, 0.35)", labelsColor: "#e8ecf5", labelsHzColor: "#c9d3ea",
    });
  }
  watchSpectrogram(deck) {
    const spec = deck.spectrogram;
    spec.on("ready", () => {
      if (spec !== deck.spectrogram) return;
      deck.specReady = true;
      if (this.deck !== deck) return;
      mark("spectrogram");
      this.applyView();
      this.pinLabels();
      this.checkReady();
    });
  }
  /* A new spectrogram (scale, height or frequency range changed) over the same audio. */
  rebuildSpectrogram({ standby = true } = {}) {
    const deck = this.deck, old = deck.spectrogram;
    deck.specReady = false;  // until the new one has drawn
    deck.scale = this.scale;
    deck.tall = this.tall;
    deck.spectrogram = this.spectrogram = this.makeSpectrogram();
    this.watchSpectrogram(deck);
    deck.ws.unregisterPlugin(old);
    deck.ws.registerPlugin(deck.spectrogram);
    // The prepared next clip was drawn with the old settings: prepare it again.
    if (standby && this.standby) {
      const { url, sampleRate } = this.standby;
      this.dropStandby();
      this.prepare(url, sampleRate);
    }
  }
  toggleScale() {
    this.scale = this.scale === "mel" ? "linear" : "mel";
    localStorage.setItem(SCALE_KEY, this.scale);
    this.rebuildSpectrogram();
    this.updateScaleButton();
    return this.scale;
  }
  toggleTall() {
    this.tall = !this.tall;
    localStorage.setItem(TALL_KEY, this.tall ? "1" : "0");
    this.rebuildSpectrogram();
    const b = this.box.querySelector('[data-action="tall"]');
    if (b) b.setAttribute("aria-pressed", this.tall ? "true" : "false");
    return this.tall;
  }
  updateScaleButton() {
    this.box.dataset.scale = this.scale;
    const b = this.box.querySelector('[data-action="scale"] [data-slot]');
    if (b) b.textContent = this.scale;
    const t = this.box.querySelector('[data-action="tall"]');
    if (t) t.setAttribute("aria-pressed", this.tall ? "true" : "false");
  }
  /* Keeps the Hz labels at the left edge of the visible part when scrolled or zoomed. */
  pinLabels() {
    const labels = this.ws.getWrapper().querySelector('canvas[part~="spec-labels"]');
    if (labels) labels.style.transform = "translateX(" + this.ws.getScroll() + "px)";
  }
  showPeak() {
    const el = this.box.querySelector("[data-peak]");
    const db = this.deck.peakDb;
    if (!el || db === undefined) return;
    this.box.dataset.peakDbfs = isFinite(db) ? db.toFixed(1) : "-inf";
    el.textContent = "peak " + (isFinite(db) ? db.toFixed(1).replace("-", "−") : "−∞") + " dBFS";
  }

  /* Ready = audio playable (readyState >= 3) and the spectrogram drawn. */
  checkReady() {
    if (!this.waveReady || !this.specReady || this.audio.readyState < 3 || this.box.dataset.ready) return;
    this.box.dataset.ready = "1";
    mark("ready");
    const since = sinceCarried("review.navKeyAt");
    if (since !== null) this.box.dataset.readyMs = since.toFixed(1);
    const cbs = this.readyCallbacks;
    this.readyCallbacks = [];
    cbs.forEach((cb) => cb(this));
    if (this.box.dataset.autoplay === "1") this.play();
    this.preloadNext();
  }

  onReady(cb) { if (this.box.dataset.ready) cb(this); else this.readyCallbacks.push(cb); }

  preloadNext() {
    const url = this.box.dataset.nextAudio;
    if (!url || this.preloaded === url) return;
    this.preloaded = url;
    if (this.standby && this.standby.url === absolute(url)) return;
    // Fills the HTTP cache (the audio view sends Cache-Control: private, max-age), so the
    // next clip's player fetches nothing from the server.
    fetch(url, { credentials: "same-origin" }).then((r) => r.arrayBuffer()).catch(() => {});
  }

  /* Prepares the clip at url (its file's sampleRate) off screen: a standby deck in a hidden
   * container of the live one's width, which fetches, decodes and draws the waveform and
   * the spectrogram now, while the current clip plays; load(url) then swaps it in with
   * nothing left to fetch, decode or compute (nextclip.js calls this for the prefetched
   * next clip page). One standby at a time. */
  prepare(url, sampleRate) {
    if (!url) return;
    url = absolute(url);
    const sr = String(sampleRate || "");
    const sb = this.standby;
    if (sb && sb.url === url && sb.sampleRate === sr && sb.scale === this.scale && sb.tall === this.tall && !sb.failed) return;
    this.dropStandby();
    if (url === this.deck.url) return;
    const live = this.deck.container;
    const container = document.createElement("div");
    container.className = "wave-standby";  // .wave once swapped in
    container.setAttribute("aria-hidden", "true");
    container.style.width = live.clientWidth + "px";  // the same width: the same pictures
    live.after(container);
    const audio = document.createElement("audio");
    audio.preload = "auto";
    audio.dataset.audioStandby = "";
    audio.src = url;
    this.audio.after(audio);
    try {
      this.standby = this.makeDeck(container, audio, sr);
    } catch (e) {
      container.remove();
      audio.remove();
    }
  }
  dropStandby() {
    if (!this.standby) return;
    const sb = this.standby;
    this.standby = null;
    this.retire(sb);
  }
  /* A deck no longer wanted: its wavesurfer destroyed, its audio element and container gone. */
  retire(deck) {
    try { deck.ws.destroy(); } catch (e) { /* already gone */ }
    const a = deck.audio;
    a.pause();
    a.removeAttribute("src");
    a.load();
    a.remove();
    deck.container.remove();
  }
  /* The prepared deck takes the live one's place: its container and audio element get the
   * live ones' attributes, the old deck is destroyed, the page's settings (speed, zoom,
   * volume, view) carry over. Synchronous: what was prepared is on screen at once. */
  swapIn(deck) {
    const old = this.deck;
    const c = deck.container;
    c.style.width = "";
    c.className = old.container.className;
    c.removeAttribute("aria-hidden");
    c.dataset.wave = "";
    ["role", "aria-label", "id"].forEach((k) => {
      const v = old.container.getAttribute(k);
      if (v !== null) c.setAttribute(k, v);
    });
    delete deck.audio.dataset.audioStandby;
    deck.audio.dataset.audio = "";
    const rate = old.ws.getPlaybackRate ? old.ws.getPlaybackRate() : 1;
    const zoom = old.ws.options.minPxPerSec || 0;
    deck.audio.volume = old.audio.volume;
    deck.audio.muted = old.audio.muted;
    old.audio.pause();  // at once: the finished clip must not go on playing
    old.container.replaceWith(c);
    this.use(deck);
    // The old deck's teardown waits until the new clip is ready (it is not on the way).
    setTimeout(() => this.retire(old), 0);
    if (this.sampleRate !== deck.sampleRate) {
      this.sampleRate = deck.sampleRate;
      this.box.dataset.sampleRate = this.sampleRate;
      this.box.dataset.maxHz = String(maxHz(this.sampleRate));
    }
    if (rate !== 1) deck.ws.setPlaybackRate(rate, true);
    this.playState();
    if (zoom !== (deck.ws.options.minPxPerSec || 0)) {
      // Zoomed since the preparation: ready once the spectrogram is drawn at this zoom.
      if (deck.waveReady) {
        deck.specReady = false;
        deck.ws.zoom(zoom);
      } else {
        deck.ws.setOptions({ minPxPerSec: zoom });
      }
    }
    if (deck.waveReady) {
      this.waveShown();
      this.showPeak();
      this.pinLabels();
    } else if (this.status) {
      this.status.hidden = false;
      this.status.textContent = "Loading audio…";
    }
    this.checkReady();
  }

  /* Another clip in the same player: the prepared one when it is that clip (the in-place
   * next clip), else loaded here (rapid mode moves from clip to clip this way). */
  load(url, nextUrl, sampleRate) {
    lap("load");
    this.box.dataset.ready = "";
    if (nextUrl !== undefined) this.box.dataset.nextAudio = nextUrl || "";
    url = absolute(url);
    const sb = this.standby;
    const sr = String(sampleRate === undefined ? this.sampleRate || "" : sampleRate || "");
    if (sb && sb.url === url && sb.sampleRate === sr && sb.scale === this.scale && sb.tall === this.tall && !sb.failed) {
      this.standby = null;
      lap("swap");
      this.swapIn(sb);
      return Promise.resolve();
    }
    if (sb && sb.url === url) this.dropStandby();
    this.deck.waveReady = this.deck.specReady = false;
    if (sampleRate !== undefined && String(sampleRate || "") !== String(this.sampleRate || "")) {
      const oldMax = maxHz(this.sampleRate);
      this.sampleRate = sampleRate || "";
      this.box.dataset.sampleRate = this.sampleRate;
      this.box.dataset.maxHz = String(maxHz(this.sampleRate));
      this.deck.sampleRate = String(this.sampleRate);
      this.ws.setOptions({ sampleRate: decodeRate(this.sampleRate) });
      if (maxHz(this.sampleRate) !== oldMax) this.rebuildSpectrogram({ standby: false });
    }
    this.deck.url = url;
    this.audio.src = url;
    return this.ws.load(url);
  }

  play() {
    return this.ws.play().catch(() => {
      if (this.status) { this.status.hidden = false; this.status.textContent = "Press Space to play."; }
    });
  }
  pause() { this.ws.pause(); }
  togglePlay() { if (this.ws.isPlaying()) this.pause(); else { if (this.status && this.waveReady) this.status.hidden = true; this.play(); } }
  seekBy(dt) {
    const d = this.ws.getDuration() || 0;
    this.ws.setTime(Math.max(0, Math.min(d, this.ws.getCurrentTime() + dt)));
  }
  replay() { this.ws.setTime(0); this.play(); }
  toggleLoop() {
    this.loop = !this.loop;
    const b = this.box.querySelector('[data-action="loop"]');
    if (b) { b.setAttribute("aria-pressed", this.loop ? "true" : "false"); b.classList.toggle("is-active", this.loop); }
    return this.loop;
  }
  changeSpeed(step) {
    const sel = this.box.querySelector("[data-speed]");
    if (!sel) return "";
    sel.selectedIndex = Math.min(sel.options.length - 1, Math.max(0, sel.selectedIndex + step));
    sel.dispatchEvent(new Event("change"));
    return sel.options[sel.selectedIndex].text;
  }
  zoomBy(factor) {
    const current = this.ws.options.minPxPerSec || 0;
    const width = this.box.querySelector("[data-wave]").clientWidth || 800;
    const fit = width / (this.ws.getDuration() || 10);
    const next = Math.max(fit, Math.min(1000, (current || fit) * factor));
    this.ws.zoom(next <= fit * 1.01 ? 0 : next);
  }

  /* s: waveform + spectrogram -> waveform -> spectrogram -> both. */
  cycleView() {
    this.view = VIEWS[(VIEWS.indexOf(this.view) + 1) % VIEWS.length];
    localStorage.setItem(VIEW_KEY, this.view);
    this.applyView();
    return VIEW_NAMES[this.view];
  }
  applyView() {
    this.box.dataset.view = this.view;
    const wrapper = this.ws.getWrapper();
    const hideWave = this.view === "spec", hideSpec = this.view === "wave";
    wrapper.querySelectorAll(".canvases, .progress").forEach((el) => { el.style.display = hideWave ? "none" : ""; });
    const spec = this.spectrogramElement();
    if (spec) spec.style.display = hideSpec ? "none" : "block";
    this.updateViewButton();
  }
  updateViewButton() {
    if (this.viewButton) this.viewButton.querySelector("[data-slot]").textContent = VIEW_NAMES[this.view];
  }
  spectrogramElement() {
    const labels = this.ws.getWrapper().querySelector('canvas[part~="spec-labels"]');
    return labels ? labels.parentElement : null;
  }
  /* The drawn spectrogram canvases (tests read their pixels). */
  spectrogramCanvases() {
    const spec = this.spectrogramElement();
    return spec ? Array.from(spec.querySelectorAll("canvas")).filter((c) => c.getAttribute("part") !== "spec-labels") : [];
  }

  playState() {
    if (this.playButton) this.playButton.textContent = this.ws.isPlaying() ? "Pause" : "Play";
  }
  showTime(t) {
    if (this.timeEl) this.timeEl.textContent = fmt(t) + " / " + fmt(this.ws.getDuration());
  }
}

let player = null;
/* The page's player (null on a page without one). */
export function getPlayer() { return player; }

const box = document.querySelector("[data-player]");
if (box) {
  player = new Player(box);
  window.ReviewPlayer = player;  // tests and the benchmark read it
  document.dispatchEvent(new CustomEvent("review:player", { detail: player }));
}
