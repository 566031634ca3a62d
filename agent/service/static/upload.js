// The upload page: send one image or video to POST /api/score?evidence=1 and show the
// report: overall verdict, then per face its verdict, probabilities, timeline and heat map.
"use strict";

(() => {
  const { el, formatScore, formatSeconds } = Verity;

  const form = document.getElementById("upload-form");
  const fileInput = document.getElementById("file");
  const dropZone = document.getElementById("drop-zone");
  const progressBox = document.getElementById("progress-box");
  const progress = document.getElementById("progress");
  const status = document.getElementById("status");
  const errorBox = document.getElementById("error");
  const result = document.getElementById("result");
  const verdictEl = document.getElementById("verdict");
  const summary = document.getElementById("summary");
  const tracksBox = document.getElementById("tracks");

  let busy = false;
  let waitingForToken = null; // the file to send again once a token is entered
  let plots = [];             // [canvas, points, options] to redraw on resize

  function megabytes(bytes) {
    return `${(bytes / (1024 * 1024)).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MB`;
  }

  function setBusy(on) {
    busy = on;
    fileInput.disabled = on;
    dropZone.setAttribute("aria-disabled", on ? "true" : "false");
    dropZone.classList.toggle("busy", on);
    document.getElementById("main").setAttribute("aria-busy", on ? "true" : "false");
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function clearResult() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    result.hidden = true;
    verdictEl.textContent = "";
    verdictEl.dataset.verdict = "";
    summary.replaceChildren();
    tracksBox.replaceChildren();
    plots = [];
  }

  function errorFrom(xhr) {
    let detail = "";
    try {
      const body = JSON.parse(xhr.responseText);
      detail = body && body.error ? String(body.error) : "";
    } catch (_) {
      // Not the service's JSON: a proxy's page, or a crash (its log says more than its page).
      detail = xhr.status >= 500 ? "" : (xhr.responseText || "").trim().slice(0, 300);
    }
    const what = {
      400: "The upload was not understood",
      413: "The file is too large",
      415: "Not an image or a video",
      422: "The file could not be decoded",
      503: "The agent is not ready",
    }[xhr.status] || (xhr.status >= 500
      ? `The agent failed to judge the file (HTTP ${xhr.status}); its log has the details`
      : `The agent answered ${xhr.status}`);
    if (!detail) return `${what}.`;
    return /^[^:]{1,120}: /.test(detail) ? detail : `${what}: ${detail}`; // "name: why" says it all
  }

  function upload(file) {
    if (busy || !file) return;
    clearResult();
    setBusy(true);
    progressBox.hidden = false;
    progress.max = 100;
    progress.value = 0;
    status.textContent = `Uploading ${file.name} (${megabytes(file.size)})…`;

    const body = new FormData();
    body.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/score?evidence=1");
    const token = Verity.token();
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      const pct = Math.round((event.loaded / event.total) * 100);
      progress.value = pct;
      status.textContent = `Uploading ${file.name}: ${pct}% of ${megabytes(event.total)}`;
    });
    xhr.upload.addEventListener("load", () => {
      progress.removeAttribute("value"); // indeterminate while the models work
      status.textContent = `Analysing ${file.name}: finding faces and scoring each frame…`;
    });
    xhr.addEventListener("load", () => {
      setBusy(false);
      progressBox.hidden = true;
      if (xhr.status === 401) {
        waitingForToken = file;
        Verity.authFailed(Boolean(token));
        showError("The agent asked for an access token; enter it above and the file is sent again.");
        return;
      }
      if (xhr.status < 200 || xhr.status >= 300) {
        showError(errorFrom(xhr));
        return;
      }
      let report;
      try {
        report = JSON.parse(xhr.responseText);
      } catch (_) {
        showError("The agent's answer was not a report (not JSON).");
        return;
      }
      render(report, file);
    });
    xhr.addEventListener("error", () => {
      setBusy(false);
      progressBox.hidden = true;
      showError("Network error: the agent could not be reached.");
    });
    xhr.addEventListener("abort", () => {
      setBusy(false);
      progressBox.hidden = true;
    });
    xhr.send(body);
  }

  // ---- the report ---------------------------------------------------------------------

  function term(dl, label, value) {
    dl.append(el("div", {}, el("dt", {}, label), el("dd", {}, value)));
  }

  function render(report, file) {
    const verdict = String(report.verdict || "unknown");
    verdictEl.textContent = verdict.toUpperCase();
    verdictEl.dataset.verdict = verdict;

    const tracks = report.tracks || [];
    term(summary, "File", report.path || file.name);
    term(summary, "Kind", report.kind || "–");
    term(summary, "Faces", String(tracks.length));
    term(summary, "Frames analysed", String(report.frames_analysed ?? "–"));
    term(summary, "Threshold", formatScore(report.threshold));
    const models = Object.entries(report.models || {}).map(([role, name]) => `${role}: ${name}`).join(", ");
    term(summary, "Models", models || "–");

    if (!tracks.length) {
      tracksBox.append(el("p", { class: "empty" }, "No face was found in this file, so there is nothing to judge."));
    }
    const explanations = report.explanations || {};
    result.hidden = false;
    for (const track of tracks) tracksBox.append(renderTrack(track, report, explanations[String(track.track_id)]));
    for (const [canvas, points, options] of plots) Verity.drawTimeline(canvas, points, options);
    result.scrollIntoView({ block: "nearest" });
  }

  function renderTrack(track, report, explanation) {
    const verdict = String(track.verdict || "unknown");
    const titleId = `track-title-${track.track_id}`;
    const facts = el("dl", { class: "track-facts" });
    term(facts, "Mean probability", formatScore(track.mean_probability));
    if (report.kind === "video") term(facts, "Highest rolling score", formatScore(track.max_rolling_score));
    term(facts, "Frames judged", String(track.frames_judged));
    const reasons = Object.entries(track.unknown_reasons || {}).map(([why, n]) => `${why.replace(/_/g, " ")}: ${n}`).join(", ");
    term(facts, "Frames unknown", `${track.frames_unknown}${reasons ? ` (${reasons})` : ""}`);
    if (report.kind === "video") {
      term(facts, "Seen", `${formatSeconds(track.first_seen)} – ${formatSeconds(track.last_seen)}`);
      const alerted = track.alerted_at || [];
      term(facts, "Would alert at", alerted.length ? alerted.map(formatSeconds).join(", ") : "never");
    }
    const byModel = Object.entries(track.mean_by_model || {});
    if (byModel.length) term(facts, "By model", byModel.map(([m, p]) => `${m} ${formatScore(p)}`).join(", "));

    const figures = [];
    const points = (track.timeline || []).map(([t, p]) => [Number(t), p === null ? null : Number(p)]);
    if (points.length && report.kind !== "image") { // a still has one point: no timeline
      const canvas = el("canvas", { class: "timeline", role: "img", width: "560", height: "140" });
      const options = {
        threshold: report.threshold,
        t0: Math.min(0, points[0][0]),
        t1: points[points.length - 1][0],
        label: `Fake probability of face ${track.track_id} per analysed frame`,
      };
      plots.push([canvas, points, options]);
      figures.push(el("figure", { class: "timeline-figure" }, canvas,
        el("figcaption", {}, "Fake probability per analysed frame over time; dashed line: the alert threshold.")));
    }
    if (explanation) {
      figures.push(el("figure", { class: "explanation-figure" },
        el("img", {
          class: "explanation", src: `data:image/jpeg;base64,${explanation}`,
          alt: `Face ${track.track_id} with a heat map of the regions that drove its score`,
        }),
        el("figcaption", {}, "Heat map: where the model saw manipulation, on its highest-scoring frame.")));
    }

    return el("section", {
      class: "track-result", "aria-labelledby": titleId,
      dataset: { trackId: String(track.track_id), verdict },
    },
      el("header", { class: "track-result-head" },
        el("h3", { id: titleId }, `Face ${track.track_id}`),
        el("span", { class: "badge verdict", dataset: { verdict } }, verdict.toUpperCase())),
      el("div", { class: "track-result-body" }, facts, el("div", { class: "figures" }, figures)));
  }

  // ---- choosing and dropping ----------------------------------------------------------

  fileInput.addEventListener("change", () => {
    const file = fileInput.files && fileInput.files[0];
    if (file) upload(file);
    fileInput.value = ""; // choosing the same file again sends it again
  });
  form.addEventListener("submit", (event) => event.preventDefault());

  dropZone.addEventListener("click", () => { if (!busy) fileInput.click(); });
  dropZone.addEventListener("keydown", (event) => {
    if ((event.key === "Enter" || event.key === " ") && !busy) {
      event.preventDefault();
      fileInput.click();
    }
  });
  for (const name of ["dragenter", "dragover"]) {
    dropZone.addEventListener(name, (event) => {
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = busy ? "none" : "copy";
      dropZone.classList.add("dragging");
    });
  }
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    const files = event.dataTransfer ? event.dataTransfer.files : null;
    if (!files || !files.length) return;
    if (files.length > 1) showError("Drop one file at a time.");
    else upload(files[0]);
  });
  // A file dropped beside the zone must not make the browser open it instead of this page.
  for (const name of ["dragover", "drop"]) window.addEventListener(name, (event) => event.preventDefault());

  window.addEventListener("resize", () => {
    for (const [canvas, points, options] of plots) Verity.drawTimeline(canvas, points, options);
  });

  Verity.setupAuth(null, () => {
    const file = waitingForToken;
    waitingForToken = null;
    if (file) upload(file);
    else clearResult();
  });
  // Ask for the token now rather than after a long upload (401 shows the token form).
  Verity.api("/api/alerts", { method: "GET" }).catch(() => { /* the form, or a later error */ });
})();
