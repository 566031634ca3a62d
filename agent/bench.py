"""`verity bench`: the agent on N concurrent copies of a 720p30 clip, against two references.

Four measurements on the same input, in one process:
- live: N copies paced at their own frame rate (as live cameras), through the whole agent
  with an embedded Redis: frames/s decoded and analysed, decode-to-analysis lag, dropped
  frames, faces scored per second, stream time from the fake onset to the alert, peak RSS,
  CPU cores used.
- capacity: the same N copies as fast as possible (files, nothing dropped): the most frames
  per second the agent can take in.
- decode_only (reference): N threads decoding every frame, nothing else: the CPU's ceiling.
- naive (reference): one stream, convert + detect + align + classify every frame.
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from pathlib import Path

import av
import numpy as np
import redis

from agent.alerts.sink import read_alerts
from agent.config import StreamConfig, VerityConfig
from agent.demo.clip import DemoClip, build_clip
from agent.ingest import decode_threads_for
from agent.ingest.source import set_decode_threads
from agent.resources import rss_mb


class _RssSampler:
    def __init__(self, period: float = 0.25) -> None:
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period,), daemon=True)

    def _run(self, period: float) -> None:
        while not self._stop.wait(period):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentile(values, q: float) -> float | None:
    values = list(values)
    return float(np.percentile(values, q)) if values else None


def run_agent(config: VerityConfig, clip: DemoClip, copies: int, realtime: bool) -> dict:
    from agent.app import Agent

    streams = [
        StreamConfig(url=str(clip.path), id=f"cam{i:02d}", kind="file", realtime=realtime)
        for i in range(copies)
    ]
    config = config.model_copy(
        update={
            "streams": streams,
            "alerts": config.alerts.model_copy(update={"redis_url": "embedded"}),
        }
    )
    with Agent(config) as agent, _RssSampler() as rss:
        cpu0, wall0 = _cpu_seconds(), time.perf_counter()
        result = agent.run(threading.Event())
        wall = time.perf_counter() - wall0
        cpu = _cpu_seconds() - cpu0
        client = redis.Redis.from_url(agent.redis_url)
        alerts = read_alerts(client, config.alerts.stream_key, count=100_000)
        client.close()
        slots = agent.pipeline.slots
        stages = agent.pipeline.stage_seconds()
        reader_stats = [slot.reader.stats for slot in slots]
        lags = [lag for slot in slots for lag in slot.lags]
        scorer = agent.pipeline.scorer
        followers = [slot.analyzer.follower for slot in slots]
        observe_threads = agent.pipeline.observe_threads
    decoded = sum(s.decoded for s in reader_stats)
    latencies = []
    false_alerts = 0
    for stream in streams:
        news = [a for a in alerts if a.stream_id == stream.id and a.event == "new"]
        if any(a.started_at < clip.onset - 0.2 for a in news):
            false_alerts += 1
        raised = [a.last_seen_at - clip.onset for a in news if a.started_at >= clip.onset - 0.2]
        latencies.append(min(raised) if raised else None)
    found = [x for x in latencies if x is not None]
    return {
        "streams": copies,
        "decode_threads_per_stream": decode_threads_for(config.ingest.decode_threads, copies),
        "wall_s": round(wall, 2),
        "decoded_fps": round(decoded / wall, 1),
        "analysed_fps": round(result.stats.frames_analysed / wall, 1),
        "faces_scored_per_s": round(result.stats.faces_scored / wall, 1),
        "frames_dropped": sum(s.dropped for s in reader_stats),
        "lag_s": {
            "mean": round(statistics.fmean(lags), 4) if lags else None,
            "p95": round(_percentile(lags, 95), 4) if lags else None,
            "max": round(max(lags), 4) if lags else None,
        },
        "onset_to_alert_s": {
            "streams_alerted": len(found),
            "mean": round(statistics.fmean(found), 3) if found else None,
            "max": round(max(found), 3) if found else None,
        },
        "streams_with_false_alert": false_alerts,
        "inference_ms_per_face": round(1000 * scorer.inference_seconds / max(scorer.crops_scored, 1), 3),
        "deep": _deep_figures(scorer, result.stats, wall, copies),
        "spatial": {"judged": scorer.crops_scored, "carried": scorer.crops_carried},
        "detections": {"full": sum(f.detections_run - f.quick_detections_run for f in followers),
                       "quick": sum(f.quick_detections_run for f in followers),
                       "quick_skipped_still": sum(f.detections_skipped for f in followers)},
        "observe_threads": observe_threads,
        "cpu_cores_used": round(cpu / wall, 2),
        "profile": _profile(stages, result.stats.frames_analysed, cpu),
        "peak_rss_mb": round(rss.peak, 1),
    }


def _profile(stages: dict[str, float], frames: int, cpu: float) -> dict:
    """Milliseconds per analysed frame by stage, and how much of the process's CPU time the
    stages account for (the rest: FFmpeg's own threads, ONNX Runtime's pool beyond the calling
    thread, the sink, Python's own overhead)."""
    per_frame = {k: round(1000 * v / max(frames, 1), 3) for k, v in stages.items()}
    total = sum(stages.values())
    return {
        "ms_per_analysed_frame": per_frame,
        "total_ms_per_analysed_frame": round(1000 * total / max(frames, 1), 3),
        "share_of_process_cpu": round(total / cpu, 3) if cpu else None,
    }


def _deep_figures(scorer, stats, wall: float, copies: int) -> dict | None:
    """The deep look's cost: looks, ms per look, its share of one core per stream, and looks per
    track-minute (the bench clip holds one face per stream)."""
    if scorer.deep is None:
        return None
    looks = scorer.deep_looks
    return {
        "looks": looks,
        "looks_deferred": scorer.deep_deferred,
        "cpu_share_limit": scorer.config.deep_cpu_share,
        "ms_per_look": round(1000 * scorer.deep_seconds / max(looks, 1), 1),
        "core_share_per_stream": round(scorer.deep_seconds / wall / copies, 4),
        "looks_per_track_minute": round(looks / max(copies * wall / 60.0, 1e-9), 1),
        "runtime": scorer.deep.runtime,
    }


def decode_only(path: Path, copies: int, decode_threads: int = 0) -> dict:
    """Every frame of every copy decoded, in parallel threads, nothing converted; decoder
    threads as the agent would set them (`ingest.decode_threads`)."""
    counts = [0] * copies
    threads_per_stream = decode_threads_for(decode_threads, copies)

    def work(i: int) -> None:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            set_decode_threads(stream.codec_context, threads_per_stream)
            for _ in container.decode(stream):
                counts[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(copies)]
    start, cpu = time.perf_counter(), _cpu_seconds()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    frames = sum(counts)
    return {"streams": copies, "decode_threads": threads_per_stream, "frames": frames,
            "wall_s": round(wall, 2), "fps": round(frames / wall, 1),
            "cpu_ms_per_frame": round(1000 * cpu / max(frames, 1), 3)}


def naive(path: Path, config: VerityConfig, max_frames: int) -> dict:
    """One stream, every frame converted, detected, aligned, classified: no cap, no tracking."""
    from agent.pipeline import FaceScorer
    from engines.faces import align_faces, create_detector

    scorer = FaceScorer(config.models)
    detector = create_detector(config.faces.detector)
    frames = faces = 0
    start = time.perf_counter()
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="bgr24")
            detections = detector.detect(image)
            if len(detections):
                crops = align_faces(image, detections.keypoints, scorer.align_spec)
                scorer.spatial_probabilities(crops)
                faces += len(crops)
            frames += 1
            if frames >= max_frames:
                break
    wall = time.perf_counter() - start
    return {"streams": 1, "frames": frames, "faces": faces, "wall_s": round(wall, 2), "fps": round(frames / wall, 1)}


def run_bench(
    config: VerityConfig,
    workdir: Path,
    copies: int = 8,
    seconds: float = 20.0,
    width: int = 1280,
    height: int = 720,
    fps: int = 30,
    naive_frames: int = 300,
    progress=print,
) -> dict:
    progress(f"building a {width}x{height} {fps} fps clip of {seconds:.0f} s (fake from the middle)...")
    clip = build_clip(
        workdir / f"bench-{width}x{height}.mp4", width=width, height=height, fps=fps,
        real_seconds=seconds / 2, fake_seconds=seconds / 2, crf=23,
    )
    progress(f"live: {copies} copies paced at {fps} fps through the agent...")
    live = run_agent(config, clip, copies, realtime=True)
    progress(f"capacity: {copies} copies as fast as possible...")
    capacity = run_agent(config, clip, copies, realtime=False)
    progress(f"decode-only reference: {copies} copies...")
    decode = decode_only(clip.path, copies, config.ingest.decode_threads)
    progress(f"naive reference: 1 stream, {naive_frames} frames, every frame analysed...")
    reference = naive(clip.path, config, naive_frames)
    return {
        "input": {
            "clip": f"{width}x{height} H.264 {fps} fps, {seconds:.0f} s, synthetic face, fake from {clip.onset:.1f} s",
            "copies": copies,
            "analysis_fps_per_stream": config.ingest.analysis_fps,
            "detect_every": config.faces.detect_every,
            "full_detect_every": config.faces.full_detect_every,
            "still_shift": config.faces.still_shift,
            "faces_threads": config.faces.threads,
            "detector": config.faces.detector.model_dump(),
            "model": config.models.spatial,
            "temporal_model": config.models.temporal,
            "deep_model": config.models.deep,
            "deep_every_s": config.models.deep_every_s,
            "cpu_count": os.cpu_count(),
        },
        "live": live,
        "capacity": capacity,
        "decode_only": decode,
        "naive": reference,
        "ratios": {
            "capacity_vs_decode_only": round(capacity["decoded_fps"] / decode["fps"], 3),
            "capacity_vs_naive": round(capacity["decoded_fps"] / reference["fps"], 2),
            "live_keeps_up": live["frames_dropped"] == 0 and (live["lag_s"]["p95"] or 0) < 1.0,
        },
    }


def run_sweep(config: VerityConfig, workdir: Path, counts: list[int], seconds: float = 12.0,
              width: int = 1280, height: int = 720, fps: int = 30, progress=print) -> dict:
    """The live run at each stream count: how cost grows with streams."""
    clip = build_clip(
        workdir / f"bench-{width}x{height}.mp4", width=width, height=height, fps=fps,
        real_seconds=seconds / 2, fake_seconds=seconds / 2, crf=23,
    )
    rows = []
    for copies in counts:
        progress(f"live: {copies} copies paced at {fps} fps through the agent...")
        rows.append(run_agent(config, clip, copies, realtime=True))
    return {
        "input": {"clip": f"{width}x{height} H.264 {fps} fps, {seconds:.0f} s",
                  "analysis_fps_per_stream": config.ingest.analysis_fps,
                  "deep_model": config.models.deep, "cpu_count": os.cpu_count()},
        "sweep": rows,
    }


def sweep_table(report: dict) -> str:
    """A Markdown table of a sweep (the README carries it)."""
    fps = report["input"]["analysis_fps_per_stream"]
    lines = [
        "| streams | analysed fps (needed) | dropped | lag p95 s | onset to alert s (max) "
        "| cores busy | peak RSS MB | deep looks / track-minute |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["sweep"]:
        deep = row.get("deep") or {}
        alert = row["onset_to_alert_s"]
        lines.append(
            f"| {row['streams']} | {row['analysed_fps']} ({row['streams'] * fps:g}) "
            f"| {row['frames_dropped']} | {row['lag_s']['p95']} "
            f"| {alert['max']} ({alert['streams_alerted']}/{row['streams']} alerted) "
            f"| {row['cpu_cores_used']} | {row['peak_rss_mb']} "
            f"| {deep.get('looks_per_track_minute', '-')} |"
        )
    return "\n".join(lines)
