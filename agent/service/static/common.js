// Shared by the dashboard and the upload page: the bearer token, API calls, the event
// stream reader (fetch + ReadableStream, since EventSource cannot send a header), and the
// score timeline plot. Plain browser JavaScript, no libraries.
"use strict";

const Verity = (() => {
  const TOKEN_KEY = "verity.token";
  let authHandler = null;

  // ---- token -------------------------------------------------------------------------

  // `#token=...` in the address: keep it in this tab's session storage and take it out of
  // the address bar (and history), so it is not bookmarked, shared or shown.
  function adoptTokenFromHash() {
    const hash = location.hash.replace(/^#/, "");
    if (!hash) return false;
    const params = new URLSearchParams(hash);
    if (!params.has("token")) return false;
    const token = params.get("token").trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(history.state, "", location.pathname + location.search + (rest ? "#" + rest : ""));
    return Boolean(token);
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function setToken(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  }

  function authHeaders(extra) {
    const headers = new Headers(extra || {});
    const value = token();
    if (value) headers.set("Authorization", "Bearer " + value);
    return headers;
  }

  class AuthError extends Error {
    constructor(hadToken) {
      super(hadToken ? "The access token was refused." : "This agent needs an access token.");
      this.name = "AuthError";
      this.hadToken = hadToken;
    }
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.name = "ApiError";
      this.status = status;
    }
  }

  // The error message of a failed reply: the service answers JSON {"error": ...}.
  async function errorOf(response) {
    let detail = "";
    try {
      const text = await response.text();
      try {
        const body = JSON.parse(text);
        detail = body && body.error ? String(body.error) : text;
      } catch (_) {
        detail = text;
      }
    } catch (_) { /* no body */ }
    detail = detail.trim().slice(0, 500);
    return new ApiError(response.status, detail || `HTTP ${response.status} ${response.statusText}`);
  }

  function authFailed(hadToken) {
    const error = new AuthError(hadToken);
    if (hadToken) setToken(null);
    if (authHandler) authHandler(error);
    return error;
  }

  // fetch() with the token; throws AuthError on 401 (after showing the token form) and
  // ApiError on any other failure status.
  async function api(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = authHeaders(opts.headers);
    opts.cache = "no-store";
    const hadToken = Boolean(token());
    const response = await fetch(path, opts);
    if (response.status === 401) throw authFailed(hadToken);
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  async function apiJson(path, options) {
    const response = await api(path, options);
    return response.json();
  }

  // An image from the API (it needs the token header) as an object URL for <img src>.
  async function apiImage(path) {
    const response = await api(path);
    const blob = await response.blob();
    return URL.createObjectURL(blob);
  }

  // ---- token form ----------------------------------------------------------------------

  // Wires the page's #auth section: shown (with the reason) when the API answers 401;
  // `onToken` runs after a token was entered.
  function setupAuth(onRequired, onToken) {
    const section = document.getElementById("auth");
    const form = document.getElementById("token-form");
    const input = document.getElementById("token-input");
    const message = document.getElementById("auth-message");
    authHandler = (error) => {
      message.textContent = error.hadToken
        ? "The access token was refused. Enter the agent's service token."
        : "This agent needs an access token. Enter its service token to continue.";
      section.hidden = false;
      document.body.classList.add("needs-token");
      if (onRequired) onRequired(error);
      input.focus();
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) return;
      setToken(value);
      input.value = "";
      section.hidden = true;
      document.body.classList.remove("needs-token");
      if (onToken) onToken();
    });
    window.addEventListener("verity:token", () => {
      section.hidden = true;
      document.body.classList.remove("needs-token");
      if (onToken) onToken();
    });
  }

  // ---- server-sent events over fetch ---------------------------------------------------

  // Parses a text/event-stream body; calls onEvent(name, data) per event (data parsed as
  // JSON when it is JSON). Resolves when the server closes the stream.
  async function readEvents(response, onEvent, onData) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let name = "message";
    let data = [];
    const dispatch = () => {
      if (data.length) {
        const text = data.join("\n");
        let value = text;
        try { value = JSON.parse(text); } catch (_) { /* plain text data */ }
        onEvent(name, value);
      }
      name = "message";
      data = [];
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (onData) onData();
      buffer += decoder.decode(value, { stream: true });
      // Lines end with \n, \r\n or \r; a \r at the very end may be half of a \r\n.
      let match;
      while ((match = /\r\n|\n|\r(?!$)/.exec(buffer)) !== null) {
        const line = buffer.slice(0, match.index);
        buffer = buffer.slice(match.index + match[0].length);
        if (line === "") { dispatch(); continue; }
        if (line.startsWith(":")) continue; // comment / keep-alive
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (field === "event") name = val || "message";
        else if (field === "data") data.push(val);
      }
    }
  }

  // Keeps reading `path` as an event stream; reconnects with exponential backoff (1 s .. 30 s)
  // when it drops. Stops on 401 (the token form takes over) or when stop() is called.
  // onState(state, detail): "connecting" | "live" | "retrying" (detail: seconds) | "stopped".
  function subscribe(path, onEvent, onState) {
    let stopped = false;
    let controller = null;
    let timer = null;
    let delay = 1;
    const state = (s, detail) => { if (onState) onState(s, detail); };

    async function connect() {
      if (stopped) return;
      controller = new AbortController();
      state("connecting");
      try {
        const response = await api(path, {
          signal: controller.signal,
          headers: { Accept: "text/event-stream" },
        });
        let first = true;
        await readEvents(response, onEvent, () => {
          if (first) { first = false; delay = 1; state("live"); }
        });
        if (stopped) return;
        retry();
      } catch (error) {
        if (stopped || (error && error.name === "AbortError")) return;
        if (error instanceof AuthError) { stopped = true; state("stopped", error.message); return; }
        retry(error);
      }
    }

    function retry(error) {
      state("retrying", { seconds: delay, error: error ? error.message : "the stream closed" });
      timer = setTimeout(connect, delay * 1000);
      delay = Math.min(delay * 2, 30);
    }

    connect();
    return {
      stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
        if (controller) controller.abort();
        state("stopped");
      },
    };
  }

  // ---- timeline plot ------------------------------------------------------------------

  // Draws probability (0..1) over time on a <canvas>: grid, the threshold as a dashed line,
  // the series (null values break the line), points above the threshold in the alert colour.
  // points: [[t, p|null], ...] sorted by t. opts: {threshold, t0, t1, label}.
  function drawTimeline(canvas, points, opts) {
    const options = opts || {};
    const ratio = window.devicePixelRatio || 1;
    const cssWidth = canvas.clientWidth || Number(canvas.getAttribute("width")) || 300;
    const cssHeight = canvas.clientHeight || Number(canvas.getAttribute("height")) || 80;
    if (canvas.width !== Math.round(cssWidth * ratio)) canvas.width = Math.round(cssWidth * ratio);
    if (canvas.height !== Math.round(cssHeight * ratio)) canvas.height = Math.round(cssHeight * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, cssWidth, cssHeight);

    const styles = getComputedStyle(document.documentElement);
    const colour = (name, fallback) => (styles.getPropertyValue(name) || "").trim() || fallback;
    const ink = colour("--plot-ink", "#1f6feb");
    const alertInk = colour("--plot-alert", "#d1242f");
    const gridInk = colour("--plot-grid", "#d0d7de");
    const textInk = colour("--muted", "#57606a");

    const pad = { left: 28, right: 6, top: 6, bottom: 16 };
    const w = Math.max(10, cssWidth - pad.left - pad.right);
    const h = Math.max(10, cssHeight - pad.top - pad.bottom);
    const valid = points.filter((p) => p[1] !== null && p[1] !== undefined);
    let t0 = options.t0 !== undefined ? options.t0 : (points.length ? points[0][0] : 0);
    let t1 = options.t1 !== undefined ? options.t1 : (points.length ? points[points.length - 1][0] : 1);
    if (!(t1 > t0)) t1 = t0 + 1;
    const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * w;
    const y = (p) => pad.top + (1 - Math.max(0, Math.min(1, p))) * h;

    // grid and axes labels
    ctx.font = "10px system-ui, sans-serif";
    ctx.fillStyle = textInk;
    ctx.strokeStyle = gridInk;
    ctx.lineWidth = 1;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    for (const p of [0, 0.5, 1]) {
      ctx.beginPath();
      ctx.moveTo(pad.left, Math.round(y(p)) + 0.5);
      ctx.lineTo(pad.left + w, Math.round(y(p)) + 0.5);
      ctx.stroke();
      ctx.fillText(p.toFixed(1), pad.left - 4, y(p));
    }
    ctx.textBaseline = "alphabetic";
    ctx.textAlign = "left";
    ctx.fillText(formatSeconds(t0), pad.left, cssHeight - 3);
    ctx.textAlign = "right";
    ctx.fillText(formatSeconds(t1), pad.left + w, cssHeight - 3);

    // threshold
    if (typeof options.threshold === "number") {
      ctx.save();
      ctx.strokeStyle = alertInk;
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(pad.left, y(options.threshold));
      ctx.lineTo(pad.left + w, y(options.threshold));
      ctx.stroke();
      ctx.restore();
    }

    // series
    ctx.strokeStyle = ink;
    ctx.lineWidth = 1.75;
    ctx.beginPath();
    let pen = false;
    for (const [t, p] of points) {
      if (p === null || p === undefined || t < t0) { pen = false; continue; }
      if (pen) ctx.lineTo(x(t), y(p));
      else { ctx.moveTo(x(t), y(p)); pen = true; }
    }
    ctx.stroke();
    for (const [t, p] of valid) {
      if (t < t0) continue;
      const above = typeof options.threshold === "number" && p >= options.threshold;
      if (!above && valid.length > 1) continue;
      ctx.fillStyle = above ? alertInk : ink;
      ctx.beginPath();
      ctx.arc(x(t), y(p), valid.length > 1 ? 1.6 : 3, 0, Math.PI * 2);
      ctx.fill();
    }

    canvas.dataset.points = String(valid.length);
    const last = valid.length ? valid[valid.length - 1][1] : null;
    const summary = [
      options.label || "Score timeline",
      `${valid.length} point${valid.length === 1 ? "" : "s"} from ${formatSeconds(t0)} to ${formatSeconds(t1)}`,
      last === null ? "no score yet" : `latest ${formatScore(last)}`,
      typeof options.threshold === "number" ? `threshold ${formatScore(options.threshold)}` : "",
    ].filter(Boolean).join("; ");
    canvas.setAttribute("aria-label", summary);
  }

  // ---- formatting ---------------------------------------------------------------------

  function formatScore(value) {
    return value === null || value === undefined || Number.isNaN(value) ? "–" : Number(value).toFixed(2);
  }

  function formatSeconds(value) {
    if (value === null || value === undefined) return "–";
    const s = Number(value);
    if (s < 60) return `${s.toFixed(1)} s`;
    const m = Math.floor(s / 60);
    return `${m}:${String(Math.floor(s - m * 60)).padStart(2, "0")}`;
  }

  function formatClock(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // document.createElement with attributes and children (strings become text nodes).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  adoptTokenFromHash();
  // A token pasted into the address bar later: the page starts over with it (setupAuth).
  window.addEventListener("hashchange", () => {
    if (adoptTokenFromHash()) window.dispatchEvent(new Event("verity:token"));
  });

  return {
    token, setToken, authHeaders, authFailed, errorOf, api, apiJson, apiImage, setupAuth, subscribe, readEvents,
    drawTimeline, formatScore, formatSeconds, formatClock, el, AuthError, ApiError,
  };
})();
