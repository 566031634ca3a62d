// The dashboard: streams with their live face tracks (score timelines accumulated here from
// the `streams` events) and the alert feed (GET /api/alerts at open, then `alert` events).
"use strict";

(() => {
  const { el, formatScore, formatSeconds, formatClock } = Verity;

  const HISTORY_S = 120;      // stream seconds of score kept (and drawn) per track
  const MIN_SPAN_S = 10;      // a young track's plot still spans this much
  const MAX_ALERTS = 200;     // alert items kept in the feed (oldest dropped, URLs revoked)

  const streamsBox = document.getElementById("streams");
  const streamsSummary = document.getElementById("streams-summary");
  const alertsList = document.getElementById("alerts");
  const alertsEmpty = document.getElementById("alerts-empty");
  const alertsSummary = document.getElementById("alerts-summary");
  const connection = document.getElementById("connection");

  const cards = new Map();    // stream id -> {root, fields, tracksBox, tracks: Map(track id -> view)}
  const histories = new Map(); // "stream\0track" -> {points: [[t, score|null]], threshold}
  const alerts = new Map();   // alert id -> {item, fields, sequence, event, urls, evidence}
  let subscription = null;
  let generation = 0;
  let cardCount = 0;

  // ---- connection state ---------------------------------------------------------------

  function showConnection(state, detail) {
    connection.dataset.state = state;
    document.body.classList.toggle("stale", state === "retrying");
    if (state === "connecting") connection.textContent = "Connecting…";
    else if (state === "live") connection.textContent = "Live";
    else if (state === "retrying") {
      connection.textContent = `Disconnected, retrying in ${detail.seconds} s`;
      connection.title = detail.error || "";
    } else if (state === "auth") connection.textContent = "Token needed";
    else connection.textContent = "Stopped";
  }

  // ---- streams ------------------------------------------------------------------------

  function counter(label, field) {
    const dd = el("dd", { "data-field": field }, "–");
    return { node: el("div", { class: "counter" }, el("dt", {}, label), dd), dd };
  }

  function makeCard(stream) {
    const titleId = `stream-title-${++cardCount}`;
    const fields = {};
    fields.state = el("span", { class: "badge state" });
    fields.room = el("span", { class: "label-value" });
    fields.participant = el("span", { class: "label-value" });
    fields.roomBox = el("span", { class: "label label-room" }, "Room: ", fields.room);
    fields.participantBox = el("span", { class: "label label-participant" }, "Participant: ", fields.participant);
    fields.source = el("p", { class: "stream-source muted" });
    fields.error = el("p", { class: "stream-error", role: "status" });
    fields.error.hidden = true;
    const counters = [
      counter("Frames analysed", "frames_analysed"),
      counter("Decoded", "frames_decoded"),
      counter("Dropped", "dropped"),
      counter("Reconnects", "reconnects"),
      counter("Resolution", "resolution"),
    ];
    for (const c of counters) fields[c.dd.dataset.field] = c.dd;
    const tracksEmpty = el("p", { class: "empty tracks-empty" }, "No face in view.");
    const tracksBox = el("div", { class: "tracks", "aria-label": `Face tracks of ${stream.id}`, role: "list" }, tracksEmpty);
    const root = el("article", {
      class: "stream-card", "aria-labelledby": titleId, dataset: { streamId: stream.id },
    },
      el("header", { class: "stream-head" },
        el("h3", { class: "stream-id", id: titleId }, stream.id),
        fields.state),
      el("p", { class: "stream-labels" }, fields.roomBox, fields.participantBox),
      fields.source,
      el("dl", { class: "counters" }, counters.map((c) => c.node)),
      fields.error,
      tracksBox);
    return { root, fields, tracksBox, tracksEmpty, tracks: new Map() };
  }

  function updateCard(card, stream) {
    const f = card.fields;
    card.root.dataset.state = stream.state;
    f.state.textContent = stream.state;
    f.state.dataset.state = stream.state;
    f.room.textContent = stream.room || "";
    f.participant.textContent = stream.participant || "";
    f.roomBox.hidden = !stream.room;
    f.participantBox.hidden = !stream.participant;
    f.source.textContent = [stream.kind, stream.url].filter(Boolean).join(" · ");
    f.frames_analysed.textContent = stream.frames_analysed ?? "–";
    f.frames_decoded.textContent = stream.frames_decoded ?? "–";
    f.dropped.textContent = stream.dropped ?? "–";
    f.reconnects.textContent = stream.reconnects ?? "–";
    f.resolution.textContent = stream.width && stream.height ? `${stream.width}×${stream.height}` : "–";
    f.error.hidden = !stream.last_error;
    f.error.textContent = stream.last_error ? `Last error: ${stream.last_error}` : "";

    const tracks = stream.tracks || [];
    const seen = new Set();
    let alerting = false;
    for (const track of tracks) {
      seen.add(track.track_id);
      alerting = alerting || Boolean(track.alerting);
      let view = card.tracks.get(track.track_id);
      if (!view) {
        view = makeTrack(stream.id, track);
        card.tracks.set(track.track_id, view);
        card.tracksBox.append(view.root);
      }
      updateTrack(view, stream.id, track);
    }
    for (const [id, view] of card.tracks) {
      if (!seen.has(id)) {
        view.root.remove();
        card.tracks.delete(id);
        histories.delete(historyKey(stream.id, id));
      }
    }
    card.tracksEmpty.hidden = card.tracks.size > 0;
    card.root.dataset.alerting = alerting ? "true" : "false";
  }

  function historyKey(streamId, trackId) {
    return `${streamId}\u0000${trackId}`;
  }

  function makeTrack(streamId, track) {
    const fields = {
      verdict: el("span", { class: "badge verdict" }),
      score: el("span", { class: "track-score" }),
      alerting: el("span", { class: "badge alerting" }, "ALERT"),
      seen: el("span", { class: "track-seen muted" }),
    };
    const canvas = el("canvas", { class: "timeline", role: "img", width: "320", height: "72" });
    const root = el("div", { class: "track", role: "listitem", dataset: { trackId: String(track.track_id) } },
      el("div", { class: "track-head" },
        el("span", { class: "track-name" }, `Face ${track.track_id}`),
        fields.verdict, fields.alerting, fields.score, fields.seen),
      canvas);
    return { root, fields, canvas, streamId };
  }

  function updateTrack(view, streamId, track) {
    const f = view.fields;
    const verdict = track.verdict || "unknown";
    view.root.dataset.verdict = verdict;
    view.root.dataset.alerting = track.alerting ? "true" : "false";
    f.verdict.textContent = verdict.toUpperCase();
    f.verdict.dataset.verdict = verdict;
    f.alerting.hidden = !track.alerting;
    f.score.textContent = `score ${formatScore(track.score)} · peak ${formatScore(track.peak)} · threshold ${formatScore(track.threshold)}`;
    f.seen.textContent = `seen ${formatSeconds(track.first_seen)}–${formatSeconds(track.last_seen)}`;

    // Accumulate this track's rolling score (one point per new stream time).
    const key = historyKey(streamId, track.track_id);
    let history = histories.get(key);
    if (!history) histories.set(key, (history = { points: [] }));
    history.threshold = track.threshold;
    const points = history.points;
    const t = Number(track.last_seen);
    const last = points.length ? points[points.length - 1][0] : null;
    if (last !== null && t < last) points.length = 0; // the stream restarted its clock
    if (last === null || t > last || points.length === 0) {
      points.push([t, track.score === null || track.score === undefined ? null : Number(track.score)]);
    }
    while (points.length && points[0][0] < t - HISTORY_S) points.shift();
    const t0 = Math.max(points.length ? points[0][0] : t, t - HISTORY_S);
    const t1 = Math.max(t, t0 + MIN_SPAN_S);
    Verity.drawTimeline(view.canvas, points, {
      threshold: track.threshold, t0, t1,
      label: `Rolling score of face ${track.track_id} on ${streamId}`,
    });
  }

  function renderStreams(list) {
    streamsBox.setAttribute("aria-busy", "false");
    const seen = new Set();
    let faces = 0;
    let alerting = 0;
    for (const stream of list) {
      seen.add(stream.id);
      let card = cards.get(stream.id);
      if (!card) {
        card = makeCard(stream);
        cards.set(stream.id, card);
        streamsBox.append(card.root);
      }
      updateCard(card, stream);
      faces += (stream.tracks || []).length;
      alerting += (stream.tracks || []).filter((t) => t.alerting).length;
    }
    for (const [id, card] of cards) {
      if (!seen.has(id)) {
        card.root.remove();
        cards.delete(id);
        for (const trackId of card.tracks.keys()) histories.delete(historyKey(id, trackId));
      }
    }
    const empty = streamsBox.querySelector("[data-empty]");
    empty.textContent = "No streams. Add one with POST /api/streams or publish over WHIP.";
    empty.hidden = cards.size > 0;
    const n = cards.size;
    streamsSummary.textContent = `${n} stream${n === 1 ? "" : "s"} · ${faces} face${faces === 1 ? "" : "s"}` +
      (alerting ? ` · ${alerting} alerting` : "");
  }

  // ---- alerts -------------------------------------------------------------------------

  function fact(label, className) {
    const dd = el("dd", { class: className });
    return { node: el("div", {}, el("dt", {}, label), dd), dd };
  }

  function makeAlert(doc) {
    const labels = [];
    if (doc.room) labels.push(el("span", { class: "label label-room" }, "Room: ", el("span", { class: "label-value" }, doc.room)));
    if (doc.participant) labels.push(el("span", { class: "label label-participant" }, "Participant: ", el("span", { class: "label-value" }, doc.participant)));
    const kind = el("span", { class: "badge alert-kind" });
    const time = el("time", { class: "alert-time" });
    const facts = {
      track: fact("Track", "alert-track"),
      score: fact("Score", "alert-score"),
      peak: fact("Peak", "alert-peak"),
      span: fact("Stream time", "alert-span"),
      verdict: fact("Verdict", "alert-verdict"),
    };
    const evidence = el("div", { class: "evidence" });
    evidence.hidden = true;
    const note = el("p", { class: "evidence-note muted" });
    note.hidden = true;
    const item = el("li", {
      class: "alert-item",
      dataset: { alertId: doc.alert_id, streamId: doc.stream_id, trackId: String(doc.track_id) },
    },
      el("div", { class: "alert-head" },
        kind,
        el("strong", { class: "alert-stream" }, doc.stream_id),
        labels.length ? el("span", { class: "alert-labels" }, labels) : null),
      el("dl", { class: "alert-facts" }, Object.values(facts).map((f) => f.node),
        el("div", {}, el("dt", {}, "Time"), el("dd", {}, time))),
      evidence,
      note);
    item.setAttribute("aria-label", `Alert on stream ${doc.stream_id}` +
      (doc.room ? `, room ${doc.room}` : "") + (doc.participant ? `, participant ${doc.participant}` : "") +
      `, face ${doc.track_id}`);
    return { item, kind, time, facts, evidence, note, sequence: -1, event: null, urls: [], evidenceLoaded: false };
  }

  function updateAlert(entry, doc) {
    entry.sequence = doc.sequence;
    entry.event = doc.event;
    entry.item.dataset.event = doc.event;
    entry.item.dataset.verdict = doc.verdict;
    entry.kind.textContent = doc.event === "end" ? "ENDED" : doc.event.toUpperCase();
    entry.kind.dataset.event = doc.event;
    entry.time.dateTime = doc.emitted_at || "";
    entry.time.textContent = formatClock(doc.emitted_at);
    entry.time.title = doc.emitted_at || "";
    entry.facts.track.dd.textContent = String(doc.track_id);
    entry.facts.score.dd.textContent = `${formatScore(doc.score)} (threshold ${formatScore(doc.threshold)})`;
    entry.facts.peak.dd.textContent = formatScore(doc.peak_score);
    const end = doc.ended_at !== null && doc.ended_at !== undefined ? doc.ended_at : doc.last_seen_at;
    entry.facts.span.dd.textContent = `${formatSeconds(doc.started_at)} – ${formatSeconds(end)}` +
      (doc.end_reason ? ` (${doc.end_reason.replace(/_/g, " ")})` : "");
    entry.facts.verdict.dd.textContent = String(doc.verdict).toUpperCase();
  }

  async function loadEvidence(entry, doc, gen) {
    entry.evidenceLoaded = true;
    const base = `/api/alerts/${encodeURIComponent(doc.alert_id)}`;
    const images = [
      ["frame", "evidence-frame", `Frame of alert ${doc.alert_id} with face ${doc.track_id} boxed`, "Frame"],
      ["explanation", "evidence-explanation", `Face ${doc.track_id} of alert ${doc.alert_id} with its heat map`, "Face and heat map"],
    ];
    entry.evidence.hidden = false;
    const problems = [];
    await Promise.all(images.map(async ([kind, className, alt, caption]) => {
      const img = el("img", { class: className, alt, "data-kind": kind });
      const link = el("a", { class: "evidence-link", target: "_blank", rel: "noopener" }, img);
      const figure = el("figure", { class: "evidence-figure" }, link, el("figcaption", {}, caption));
      entry.evidence.append(figure);
      try {
        const url = await Verity.apiImage(`${base}/${kind}.jpg`);
        if (gen !== generation || !alerts.has(doc.alert_id)) { URL.revokeObjectURL(url); return; }
        entry.urls.push(url);
        img.src = url;
        link.href = url;
      } catch (error) {
        figure.remove();
        if (!(error instanceof Verity.AuthError)) problems.push(`${caption}: ${error.message}`);
      }
    }));
    if (problems.length) {
      entry.note.hidden = false;
      entry.note.textContent = `Evidence unavailable. ${problems.join(" ")}`;
    }
    if (!entry.evidence.children.length) entry.evidence.hidden = true;
  }

  function addAlert(doc, gen) {
    if (!doc || !doc.alert_id) return;
    let entry = alerts.get(doc.alert_id);
    if (!entry) {
      entry = makeAlert(doc);
      alerts.set(doc.alert_id, entry);
      insertNewestFirst(entry.item, doc);
      while (alerts.size > MAX_ALERTS) {
        const oldId = alertsList.lastElementChild.dataset.alertId;
        const old = alerts.get(oldId);
        old.item.remove();
        old.urls.forEach((u) => URL.revokeObjectURL(u));
        alerts.delete(oldId);
      }
    }
    // Delivery is at least once: an event already shown (same or older sequence) is skipped,
    // except that a late `new` still brings its evidence.
    if (doc.sequence > entry.sequence) updateAlert(entry, doc);
    if (doc.event === "new" && doc.snapshot && !entry.evidenceLoaded) loadEvidence(entry, doc, gen);
    if (!entry.evidenceLoaded && entry.event !== "new" && entry.note.hidden) {
      entry.note.hidden = false;
      entry.note.textContent = "Evidence is attached to the alert's first event, which this page did not see.";
    } else if (entry.evidenceLoaded && entry.note.textContent.startsWith("Evidence is attached")) {
      entry.note.hidden = true;
      entry.note.textContent = "";
    }
    renderAlertSummary();
  }

  // Newest first by publication time: alerts fetched after a reconnection (missed while the
  // event stream was down) land where they belong, not on top.
  function insertNewestFirst(item, doc) {
    const when = Date.parse(doc.emitted_at) || Date.now();
    item.dataset.order = String(when);
    for (const other of alertsList.children) {
      if (Number(other.dataset.order) <= when) {
        alertsList.insertBefore(item, other);
        return;
      }
    }
    alertsList.append(item);
  }

  function loadAlerts(gen) {
    return Verity.apiJson("/api/alerts")
      .then((body) => { if (gen === generation) (body.alerts || []).forEach((doc) => addAlert(doc, gen)); })
      .catch((error) => { if (!(error instanceof Verity.AuthError)) console.warn("alerts:", error.message); });
  }

  function renderAlertSummary() {
    alertsEmpty.hidden = alerts.size > 0;
    const active = [...alerts.values()].filter((a) => a.event !== "end").length;
    alertsSummary.textContent = alerts.size
      ? `${alerts.size} alert${alerts.size === 1 ? "" : "s"} · ${active} active · newest first`
      : "newest first";
  }

  // ---- lifecycle ----------------------------------------------------------------------

  function clearAll() {
    for (const card of cards.values()) card.root.remove();
    cards.clear();
    histories.clear();
    for (const entry of alerts.values()) entry.urls.forEach((u) => URL.revokeObjectURL(u));
    alerts.clear();
    alertsList.replaceChildren();
    const empty = streamsBox.querySelector("[data-empty]");
    empty.hidden = false;
    empty.textContent = "Waiting for the agent…";
    streamsSummary.textContent = "";
    renderAlertSummary();
  }

  function stop() {
    if (subscription) subscription.stop();
    subscription = null;
  }

  function onEvent(gen, name, data) {
    if (gen !== generation) return;
    if (name === "streams" && data && Array.isArray(data.streams)) renderStreams(data.streams);
    else if (name === "alert") addAlert(data, gen);
  }

  function start() {
    stop();
    clearAll();
    const gen = ++generation;
    document.body.classList.remove("needs-token");
    loadAlerts(gen);
    Verity.apiJson("/api/streams")
      .then((body) => { if (gen === generation) renderStreams(body.streams || []); })
      .catch(() => { /* 503 while the agent starts: the event stream brings them */ });
    let dropped = false;
    subscription = Verity.subscribe(
      "/api/events",
      (name, data) => onEvent(gen, name, data),
      (state, detail) => {
        if (gen !== generation || document.body.classList.contains("needs-token")) return;
        showConnection(state, detail);
        if (state === "retrying") dropped = true;
        if (state === "live" && dropped) { dropped = false; loadAlerts(gen); } // what we missed
      },
    );
  }

  Verity.setupAuth(
    () => { stop(); clearAll(); generation++; showConnection("auth"); },
    start,
  );
  window.addEventListener("resize", () => {
    for (const card of cards.values()) {
      for (const view of card.tracks.values()) {
        const history = histories.get(historyKey(view.streamId, Number(view.root.dataset.trackId)));
        if (!history || !history.points.length) continue;
        const t = history.points[history.points.length - 1][0];
        const t0 = Math.max(history.points[0][0], t - HISTORY_S);
        Verity.drawTimeline(view.canvas, history.points, { threshold: history.threshold, t0, t1: Math.max(t, t0 + MIN_SPAN_S) });
      }
    }
  });
  start();
})();
