"""Face-window cache for the temporal model: per video, one face followed through the
analysed frames, as loose aligned crops with face-mesh landmarks.

Windows must look like what the agent feeds a temporal model at run time, so each video is
replayed the way the agent sees it:

1. frames are admitted at `analysis_fps` on the agent's fixed time grid (a 30 fps file gives
   every 3rd frame, 25 fps gives 2, 3, 2, 3, ...), at most `max_frames` of them;
2. the agent's own tracker (`engines.faces.tracker.FaceTracker`) follows the faces: the detector
   (mediapipe, `detector_range`) runs on every `detect_every`-th analysed frame, pyramidal
   optical flow carries the keypoints in between, and at a detection they move
   `keypoint_gain` of the way toward the detector's (the agent's keypoint smoothing);
3. one face is kept: the track with the largest size x duration, plus later or earlier
   tracks of a similar size that do not overlap it in time (the same face re-acquired);
4. per analysed frame of that face: a loose crop (the model's AlignSpec widened by `widen`,
   at `loose_size` px: room for training-time jitter) and the 468 face-mesh points in crop
   pixels (real videos; fakes need none unless `mesh_for_fakes`).

Watermarked files (notes say so: DreamTalk, EMO) have the lower `watermark_crop` of each
frame cut before detection, as in the spatial cache (engines.data.cache).

Stored per video (compressed npz, one per manifest entry, in a folder named by the spec hash):
  crops     (F, S, S, 3) uint8 BGR   loose crops, in analysed-frame order
  mesh      (F, 468, 2) float32      face mesh in crop pixels (NaN: failed or not run)
  keypoints (F, 4, 2) float32        the tracker's keypoints in source-frame pixels
  analysed  (F,) int32               index of the analysed frame (consecutive = 1/fps apart)
  frame     (F,) int32               frame index in the file
  time      (F,) float32             stream time, seconds
  segment   (F,) int16               track piece; a window never spans two
  detected  (F,) bool                the detector matched the track at this frame
  interocular (F,) float32           eye distance in the source frame, pixels
plus scalar metadata (label, method, group, rel, kind, frames_analysed, faces_seen, note).

    python -m engines.data.clips --config configs/train/temporal-sbi.yaml --data DIR
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engines.data.extract import fill_cache, load_npz
from engines.faces.align import AlignSpec
from engines.manifest import ManifestEntry

log = logging.getLogger(__name__)

CLIP_CACHE_VERSION = 1
DEFAULT_CLIP_CACHE = Path(".cache/clips")


@dataclass(frozen=True)
class ClipSpec:
    """How face windows are extracted (the `clips` section of a temporal config)."""

    crop_scale: float = 3.0  # the model's AlignSpec (its size does not matter here)
    crop_center_y: float = 0.55
    widen: float = 1.5
    loose_size: int = 256
    analysis_fps: float = 10.0
    max_frames: int = 200  # analysed frames per video at most
    detector_range: str = "both"
    min_confidence: float = 0.5
    detect_every: int = 3
    keypoint_gain: float = 0.35
    iou_match: float = 0.3
    max_missed: int = 2
    min_interocular: float = 24.0
    min_track_frames: int = 8  # shorter track pieces are dropped
    same_face_ratio: float = 0.6  # a track joins the kept face if its size is within this ratio
    watermark_crop: float = 0.2
    mesh_for_fakes: bool = False

    @property
    def loose(self) -> AlignSpec:
        return AlignSpec(128, self.crop_scale, self.crop_center_y).widened(
            self.widen, self.loose_size
        )

    def digest(self) -> str:
        blob = json.dumps({"v": CLIP_CACHE_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]

    @classmethod
    def from_dict(cls, d: dict | None) -> ClipSpec:
        d = dict(d or {})
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"ClipSpec: unknown keys {unknown}")
        return cls(**d)


# ------------------------------------------------------------------------------ frames
class AnalysisRate:
    """The agent's frame-rate cap (agent.ingest.timeline.FrameRateCap): a fixed time grid at
    `fps`; a frame within half a source frame of a grid point is on time."""

    def __init__(self, fps: float) -> None:
        self.interval = 1.0 / fps
        self._next_due: float | None = None

    def admit(self, t: float, frame_duration: float) -> bool:
        tolerance = 0.5 * min(frame_duration, self.interval)
        if self._next_due is not None and t < self._next_due - tolerance:
            return False
        if self._next_due is None or t - self._next_due > self.interval:
            self._next_due = t
        self._next_due += self.interval
        return True


def analysed_frames(path: Path, fps: float, max_frames: int):
    """Yield (frame index, time s, BGR image) of the frames admitted at `fps`."""
    import av

    cap = AnalysisRate(fps)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 25.0)
        duration = 1.0 / rate
        count = 0
        for i, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else i * duration
            if not cap.admit(t, duration):
                continue
            yield i, t, frame.to_ndarray(format="bgr24")
            count += 1
            if count >= max_frames:
                break


# ------------------------------------------------------------------------------ windows
def window_starts(analysed: np.ndarray, segment: np.ndarray, length: int) -> np.ndarray:
    """Indices i where rows i .. i+length-1 are consecutive analysed frames of one segment."""
    analysed = np.asarray(analysed, np.int64)
    segment = np.asarray(segment, np.int64)
    n = len(analysed)
    if n < length:
        return np.zeros(0, np.int64)
    ok = (np.diff(analysed) == 1) & (np.diff(segment) == 0)  # row j -> j+1 continues
    # run[j]: how many continuing steps start at j
    starts = []
    run = 0
    good = np.zeros(n, np.int64)
    for j in range(n - 2, -1, -1):
        run = run + 1 if ok[j] else 0
        good[j] = run
    for i in range(n - length + 1):
        if good[i] >= length - 1:
            starts.append(i)
    return np.array(starts, np.int64)


def spread_windows(starts: np.ndarray, length: int, count: int) -> np.ndarray:
    """Up to `count` window starts spread evenly, non-overlapping where the video allows."""
    starts = np.asarray(starts, np.int64)
    if len(starts) == 0 or count <= 0:
        return np.zeros(0, np.int64)
    chosen: list[int] = []
    for s in starts:  # greedy non-overlapping cover
        if not chosen or s >= chosen[-1] + length:
            chosen.append(int(s))
    if len(chosen) > count:
        idx = np.round(np.linspace(0, len(chosen) - 1, count)).astype(int)
        chosen = [chosen[i] for i in idx]
    return np.array(chosen, np.int64)


# ------------------------------------------------------------------------------ extraction
class ClipExtractor:
    """Detector, tracker factory and face mesh held by one worker process."""

    def __init__(self, spec: ClipSpec) -> None:
        from engines.faces import create_detector
        from engines.faces.detectors import MediaPipeDetectorConfig
        from engines.faces.mesh import FaceMesh

        self.spec = spec
        self.detector = create_detector(
            MediaPipeDetectorConfig(range=spec.detector_range, min_confidence=spec.min_confidence)
        )
        self.mesh = FaceMesh(max_faces=2)

    def _tracker(self):
        # The agent's own tracker, so training crops move like run-time crops.
        from engines.faces.tracker import FaceTracker, TrackerConfig

        return FaceTracker(
            TrackerConfig(
                iou_match=self.spec.iou_match,
                max_missed=self.spec.max_missed,
                keypoint_gain=self.spec.keypoint_gain,
            )
        )

    def track(self, frames) -> tuple[dict[int, list[dict]], int]:
        """Run detection + tracking over (index, time, image) frames, as the agent's
        StreamAnalyzer does. Returns ({track id: [observation, ...]}, frames analysed)."""
        from engines.faces.follower import FaceFollower

        spec = self.spec
        follower = FaceFollower(self.detector, self._tracker(), spec.loose, spec.detect_every)
        tracks: dict[int, list[dict]] = {}
        n = 0
        for a, (index, t, image) in enumerate(frames):
            n += 1
            faces, _ended = follower.step(image, t)
            for face in faces:
                kp = face.keypoints
                iod = float(np.linalg.norm(kp[1] - kp[0]))
                if iod < spec.min_interocular:
                    continue
                tracks.setdefault(face.track.id, []).append(
                    dict(analysed=a, frame=index, time=t, keypoints=kp, crop=face.crop,
                         detected=bool(face.track.detected_now), interocular=iod)
                )
        return tracks, n

    def choose_face(self, tracks: dict[int, list[dict]]) -> list[list[dict]]:
        """The kept face's track pieces, in time order (see the module docstring)."""
        spec = self.spec
        pieces = [obs for obs in tracks.values() if len(obs) >= spec.min_track_frames]
        if not pieces:
            return []
        weight = [sum(o["interocular"] for o in obs) for obs in pieces]
        order = np.argsort(weight)[::-1]
        best = pieces[int(order[0])]
        size = float(np.median([o["interocular"] for o in best]))
        kept = [best]
        for k in order[1:]:
            obs = pieces[int(k)]
            lo, hi = obs[0]["analysed"], obs[-1]["analysed"]
            overlaps = any(not (hi < p[0]["analysed"] or lo > p[-1]["analysed"]) for p in kept)
            s = float(np.median([o["interocular"] for o in obs]))
            if not overlaps and spec.same_face_ratio <= s / size <= 1 / spec.same_face_ratio:
                kept.append(obs)
        kept.sort(key=lambda obs: obs[0]["analysed"])
        return kept

    def _mesh_for(self, crop: np.ndarray) -> np.ndarray:
        loose = self.spec.loose
        faces = self.mesh.landmarks(crop)
        empty = np.full((468, 2), np.nan, np.float32)
        if not len(faces):
            return empty
        dst = loose.destination_points()
        centre = dst.mean(0)
        unit = float(np.linalg.norm(dst[1] - dst[0]))
        dists = [np.linalg.norm(f.mean(0) - centre) for f in faces]
        best = int(np.argmin(dists))
        return empty if dists[best] > 0.75 * unit else faces[best].astype(np.float32)

    def extract(self, entry: ManifestEntry) -> dict:
        spec = self.spec

        def frames():
            for index, t, image in analysed_frames(entry.path, spec.analysis_fps, spec.max_frames):
                if entry.watermarked and spec.watermark_crop > 0:
                    image = image[: int(round(image.shape[0] * (1 - spec.watermark_crop)))]
                yield index, t, image

        tracks, n_analysed = self.track(frames())
        pieces = self.choose_face(tracks)
        rows = [(seg, o) for seg, obs in enumerate(pieces) for o in obs]
        with_mesh = spec.mesh_for_fakes or not entry.is_fake
        s = spec.loose_size
        mesh = np.full((len(rows), 468, 2), np.nan, np.float32)
        if with_mesh:
            for i, (_, o) in enumerate(rows):
                mesh[i] = self._mesh_for(o["crop"])
        return dict(
            crops=np.array([o["crop"] for _, o in rows], np.uint8).reshape(-1, s, s, 3),
            mesh=mesh,
            keypoints=np.array([o["keypoints"] for _, o in rows], np.float32).reshape(-1, 4, 2),
            analysed=np.array([o["analysed"] for _, o in rows], np.int32),
            frame=np.array([o["frame"] for _, o in rows], np.int32),
            time=np.array([o["time"] for _, o in rows], np.float32),
            segment=np.array([seg for seg, _ in rows], np.int16),
            detected=np.array([o["detected"] for _, o in rows], bool),
            interocular=np.array([o["interocular"] for _, o in rows], np.float32),
            label=np.array(entry.label),
            method=np.array(entry.method),
            group=np.array(entry.group),
            rel=np.array(entry.rel),
            kind=np.array(entry.kind),
            frames_analysed=np.array(n_analysed, np.int32),
            faces_seen=np.array(len(tracks), np.int32),
            note=np.array("watermark cropped" if entry.watermarked else ""),
        )


def clip_folder(cache_dir: Path, spec: ClipSpec) -> Path:
    return Path(cache_dir) / f"clips-{spec.digest()}"


def clip_file(cache_dir: Path, spec: ClipSpec, entry: ManifestEntry) -> Path:
    return clip_folder(cache_dir, spec) / f"{entry.key}.npz"


def build_clip_cache(
    entries: list[ManifestEntry],
    spec: ClipSpec,
    cache_dir: Path,
    *,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Path]:
    """Extract every video entry not yet cached; returns {rel: npz path} for those cached."""
    jobs = [(e, clip_file(cache_dir, spec, e)) for e in entries if e.kind == "video"]
    fill_cache(jobs, clip_folder(cache_dir, spec), ClipExtractor, spec, what="clips",
               workers=workers, progress=progress)
    return {e.rel: path for e, path in jobs if path.is_file()}


load_clip = load_npz


def spec_from_config(cfg: dict) -> ClipSpec:
    """The ClipSpec of a temporal training config (its `input` and `clips` sections)."""
    clips = {k: v for k, v in (cfg.get("clips") or {}).items() if k != "workers"}
    inp = cfg.get("input") or {}
    return ClipSpec.from_dict(
        {**clips, "crop_scale": float(inp.get("scale", 3.0)),
         "crop_center_y": float(inp.get("center_y", 0.55))}
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    from engines.manifest import read_manifest

    parser = argparse.ArgumentParser(description="Build the face-window cache for a manifest.")
    parser.add_argument("--data", default=os.environ.get("VERITY_DATA_DIR"))
    parser.add_argument("--cache", default=os.environ.get("VERITY_CLIP_CACHE_DIR")
                        or str(DEFAULT_CLIP_CACHE))
    parser.add_argument("--config", help="temporal training YAML (its `clips` and `input`)")
    parser.add_argument("--workers", type=int, default=0, help="0: the config's clips.workers")
    parser.add_argument("--limit", type=int, default=0, help="first N videos only (testing)")
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("no data folder: pass --data or set VERITY_DATA_DIR")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spec, workers = ClipSpec(), 1
    if args.config:
        import yaml

        cfg = yaml.safe_load(Path(args.config).read_text())
        spec = spec_from_config(cfg)
        workers = int((cfg.get("clips") or {}).get("workers", 1))
    workers = args.workers or workers
    entries = [e for e in read_manifest(args.data) if e.kind == "video"]
    if args.limit:
        entries = entries[: args.limit]
    start = time.time()
    done = build_clip_cache(entries, spec, Path(args.cache), workers=workers)
    frames = 0
    for path in done.values():
        with np.load(path) as d:
            frames += len(d["analysed"])
    log.info("clip cache: %d videos, %d face frames, %.0f s", len(done), frames,
             time.time() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
