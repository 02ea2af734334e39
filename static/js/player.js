/* The clip player: waveform, spectrogram (Hz axis, mel or linear), time axis, zoom, hover
 * time, playhead and click-to-seek, all drawn by wavesurfer.js 8 (vendored under
 * static/vendor/) over one <audio> element without native controls, so the page has one
 * clock.
 *
 * Markup: templates/review/_player.html (a [data-player] box). The full clip screen, rapid
 * mode and the curators' adjudication page include it; review.js, rapid.js and
 * adjudicate.js drive it through getPlayer() (also window.ReviewPlayer, which tests read).
 * load(url, nextUrl, sampleRate) puts another clip into the same player (rapid mode; the
 * in-place next clip). No inline script or style: wavesurfer's shadow-DOM <style> gets the
 * nonce of <meta name="csp-nonce"> when the page has one.
 *
 * Truth of the picture: audio is decoded at the file's own rate (data-sample-rate; at least
 * 16 kHz, at most 32 kHz), so the frequency axis runs to the file's Nyquist frequency, which
 * the box states as data-max-hz; the waveform is drawn in true amplitude (not normalised)
 * with its peak level in dBFS beside it. Player controls hand the keyboard back to the page
 * after use (blur), so every shortcut works after a click or the Speed select. */
import { mark, sinceCarried } from "./probe.js";
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
    this.audio = box.querySelector("audio[data-audio]");
    this.status = box.querySelector("[data-status]");
    this.timeEl = box.querySelector("[data-time]");
    this.viewButton = box.querySelector('[data-action="view"]');
    this.playButton = box.querySelector('[data-action="play"]');
    this.loop = false;
    this.waveReady = false;
    this.specReady = false;
    this.readyCallbacks = [];
    this.view = VIEWS.includes(localStorage.getItem(VIEW_KEY)) ? localStorage.getItem(VIEW_KEY) : "both";
    this.scale = localStorage.getItem(SCALE_KEY) === "linear" ? "linear" : "mel";
    this.tall = localStorage.getItem(TALL_KEY) === "1";
    this.sampleRate = box.dataset.sampleRate || "";
    box.dataset.maxHz = String(maxHz(this.sampleRate));
    this.spectrogram = this.makeSpectrogram();
    this.ws = WaveSurfer.create({
      sampleRate: decodeRate(this.sampleRate),
      container: box.querySelector("[data-wave]"),
      media: this.audio,
      url: absolute(this.audio.getAttribute("src")),
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
        this.spectrogram,
        TimelinePlugin.create({ height: 14, secondaryLabelOpacity: 0.5, style: { fontSize: "10px", color: "#5b6475" } }),
        ZoomPlugin.create({ scale: 0.25, maxZoom: 1000 }),
        HoverPlugin.create({ lineColor: "#1d2330", lineWidth: 1, labelBackground: "#1d2330",
                             labelColor: "#fff", labelSize: "11px", formatTimeCallback: fmt }),
      ],
    });
    this.ws.on("timeupdate", (t) => this.showTime(t));
    this.ws.on("decode", () => { mark("decoded"); this.showPeak(); });
    // The Hz labels scroll with the picture unless moved back by the scroll offset.
    this.ws.on("scroll", () => this.pinLabels());
    this.ws.on("zoom", () => requestAnimationFrame(() => this.pinLabels()));
    this.ws.on("redraw", () => this.pinLabels());
    this.ws.on("ready", () => {
      mark("wave");
      this.waveReady = true;
      if (this.status) this.status.hidden = true;
      this.applyView();
      this.showTime(0);
      this.checkReady();
    });
    this.ws.on("error", (e) => {
      if (this.status) { this.status.hidden = false; this.status.textContent = "No waveform (" + (e && e.message || e) + ")."; }
    });
    this.ws.on("play", () => this.playState());
    this.ws.on("pause", () => this.playState());
    this.ws.on("finish", () => { if (this.loop) { this.ws.setTime(0); this.ws.play(); } });
    this.watchSpectrogram();
    this.audio.addEventListener("canplay", () => { mark("canplay"); this.checkReady(); });
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

  makeSpectrogram() {
    return SpectrogramPlugin.create({
      labels: true, height: specHeight(this.tall), scale: this.scale, fftSamples: 512,
      frequencyMin: 0, frequencyMax: maxHz(this.sampleRate),
      // roseus: dark background, bright for loud; rangeDB 80 keeps quiet events visible.
      colorMap: "roseus", gainDB: 20, rangeDB: 80,
      labelsBackground: "rgba(0, 0, 0, 0.35)", labelsColor: "#e8ecf5", labelsHzColor: "#c9d3ea",
    });
  }
  watchSpectrogram() {
    const spec = this.spectrogram;
    spec.on("ready", () => {
      if (spec !== this.spectrogram) return;
      mark("spectrogram");
      this.specReady = true;
      this.applyView();
      this.pinLabels();
      this.checkReady();
    });
  }
  /* A new spectrogram (scale, height or frequency range changed) over the same audio. */
  rebuildSpectrogram() {
    const old = this.spectrogram;
    this.specReady = false;  // until the new one has drawn
    this.spectrogram = this.makeSpectrogram();
    this.watchSpectrogram();
    this.ws.unregisterPlugin(old);
    this.ws.registerPlugin(this.spectrogram);
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
    const data = this.ws.getDecodedData();
    if (!el || !data) return;
    let peak = 0;
    for (let c = 0; c < data.numberOfChannels; c++) {
      const ch = data.getChannelData(c);
      for (let i = 0; i < ch.length; i++) { const v = Math.abs(ch[i]); if (v > peak) peak = v; }
    }
    const db = peak > 0 ? 20 * Math.log10(peak) : -Infinity;
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
    // Fills the HTTP cache (the audio view sends Cache-Control: private, max-age), so the
    // next clip's player fetches nothing from the server.
    fetch(url, { credentials: "same-origin" }).then((r) => r.arrayBuffer()).catch(() => {});
  }

  /* Another clip in the same player (rapid mode moves from clip to clip without a page load). */
  load(url, nextUrl, sampleRate) {
    this.box.dataset.ready = "";
    this.waveReady = this.specReady = false;
    if (nextUrl !== undefined) this.box.dataset.nextAudio = nextUrl || "";
    if (sampleRate !== undefined && String(sampleRate || "") !== String(this.sampleRate || "")) {
      const oldMax = maxHz(this.sampleRate);
      this.sampleRate = sampleRate || "";
      this.box.dataset.sampleRate = this.sampleRate;
      this.box.dataset.maxHz = String(maxHz(this.sampleRate));
      this.ws.setOptions({ sampleRate: decodeRate(this.sampleRate) });
      if (maxHz(this.sampleRate) !== oldMax) this.rebuildSpectrogram();
    }
    url = absolute(url);
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
