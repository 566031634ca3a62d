"""Face-crop cache: per media file, sampled frames -> detected faces -> loose aligned crops.

For every file of the manifest this stores one compressed npz in the cache folder with:
  crops     (K, S, S, 3) uint8 BGR  loose aligned crops: the model's AlignSpec widened by
                                    `widen` (more context, so training can jitter and the
                                    self-blend mask can cross the crop border), S = loose_size
  mesh      (K, 468, 2) float32     face-mesh landmarks in crop pixels (NaN when the mesh
                                    failed or was not run: fakes need none)
  keypoints (K, 4, 2) float32       the detector's keypoints in crop pixels
  frame     (K,) int32              frame index in the file (0 for images)
  face      (K,) int16              face rank in its frame (0 = largest)
  interocular (K,) float32          eye distance in the source frame, pixels
  score     (K,) float32            detector score
plus scalar metadata (label, method, group, rel, kind, frames_sampled, note).

Stills (kind == image) are normalised before cropping, the same way for both classes: the image
is rescaled so the face's eye distance is `still_interocular` pixels (only ever downscaled) and
re-encoded as JPEG at `still_jpeg_quality`. Otherwise real photos (large, camera JPEG) and GAN
stills (256/512 px, one encoder) differ in pixel size and compression, and a validation metric
would measure the file format. Watermarked files (notes say so: DreamTalk, EMO demo clips)
have the lower `watermark_crop` fraction of every frame cut off before detection.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from engines.data.extract import fill_cache, load_npz
from engines.faces.align import AlignSpec, align_faces, alignment_matrix, transform_points
from engines.manifest import ManifestEntry
from engines.perturbations import jpeg_roundtrip

log = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclass(frozen=True)
class CacheSpec:
    """How faces are extracted. Its hash names the cache sub-folder."""

    crop_scale: float = 3.0  # the model's AlignSpec (size does not matter here)
    crop_center_y: float = 0.55
    widen: float = 1.5
    loose_size: int = 320
    frames_per_video: int = 32
    detector_range: str = "both"
    min_confidence: float = 0.5
    min_interocular: float = 24.0
    max_faces_per_frame: int = 4
    still_interocular: float = 48.0
    still_jpeg_quality: int = 90
    watermark_crop: float = 0.2
    mesh_for_fakes: bool = False

    @property
    def loose(self) -> AlignSpec:
        base = AlignSpec(128, self.crop_scale, self.crop_center_y)
        return base.widened(self.widen, self.loose_size)

    def digest(self) -> str:
        blob = json.dumps({"v": CACHE_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:10]

    @classmethod
    def from_dict(cls, d: dict) -> CacheSpec:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def sample_indices(total: int, count: int) -> np.ndarray:
    """`count` frame indices spread evenly over [0, total)."""
    if total <= 0:
        return np.zeros(0, np.int64)
    count = min(count, total)
    return np.unique(np.round(np.linspace(0, total - 1, count)).astype(np.int64))


def read_video_frames(path: Path, count: int) -> list[tuple[int, np.ndarray]]:
    """Up to `count` BGR frames spread over the clip (decoded in one sequential pass)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = stream.frames
        if not total:
            total = sum(1 for _ in container.decode(stream))
            container.seek(0)
    wanted = set(sample_indices(total, count).tolist())
    out: list[tuple[int, np.ndarray]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                out.append((i, frame.to_ndarray(format="bgr24")))
            if i >= max(wanted, default=-1):
                break
    return out


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return image


class FaceExtractor:
    """Detector + mesh held by one worker process."""

    def __init__(self, spec: CacheSpec) -> None:
        from engines.faces import create_detector
        from engines.faces.detectors import MediaPipeDetectorConfig
        from engines.faces.mesh import FaceMesh

        self.spec = spec
        self.detector = create_detector(
            MediaPipeDetectorConfig(range=spec.detector_range, min_confidence=spec.min_confidence)
        )
        self.mesh = FaceMesh(max_faces=2)

    def faces_in(self, image: np.ndarray, with_mesh: bool, still: bool) -> list[dict]:
        spec = self.spec
        loose = spec.loose
        dets = self.detector.detect(image)
        if not len(dets):
            return []
        iod = dets.interocular
        order = [i for i in np.argsort(-iod) if iod[i] >= spec.min_interocular]
        order = order[: spec.max_faces_per_frame]
        out = []
        for rank, i in enumerate(order):
            kps = dets.keypoints[i]
            src = image
            if still:
                factor = min(1.0, spec.still_interocular / float(iod[i]))
                if factor < 1.0:
                    src = cv2.resize(
                        image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA
                    )
                    kps = kps * factor
                src = jpeg_roundtrip(src, spec.still_jpeg_quality)
            crop = align_faces(src, kps[None], loose)[0]
            kp_crop = transform_points(kps, alignment_matrix(kps, loose))
            mesh = np.full((468, 2), np.nan, np.float32)
            if with_mesh:
                mesh = self._mesh_for(crop, kp_crop)
            out.append(
                dict(
                    crop=crop,
                    mesh=mesh,
                    keypoints=kp_crop.astype(np.float32),
                    face=rank,
                    interocular=float(iod[i]),
                    score=float(dets.scores[i]),
                )
            )
        return out

    def _mesh_for(self, crop: np.ndarray, kp_crop: np.ndarray) -> np.ndarray:
        faces = self.mesh.landmarks(crop)
        empty = np.full((468, 2), np.nan, np.float32)
        if not len(faces):
            return empty
        # The mesh face whose centre is nearest the detector's face; reject far-off ones.
        centre = kp_crop.mean(0)
        unit = float(np.linalg.norm(kp_crop[1] - kp_crop[0]))
        dists = [np.linalg.norm(f.mean(0) - centre) for f in faces]
        best = int(np.argmin(dists))
        if dists[best] > 0.75 * unit:
            return empty
        return faces[best].astype(np.float32)

    def extract(self, entry: ManifestEntry) -> dict:
        spec = self.spec
        with_mesh = spec.mesh_for_fakes or not entry.is_fake
        if entry.kind == "video":
            frames = read_video_frames(entry.path, spec.frames_per_video)
        else:
            frames = [(0, read_image(entry.path))]
        records = []
        for index, image in frames:
            if entry.watermarked and spec.watermark_crop > 0:
                image = image[: int(round(image.shape[0] * (1 - spec.watermark_crop)))]
            for face in self.faces_in(image, with_mesh, still=entry.kind == "image"):
                face["frame"] = index
                records.append(face)
        s = spec.loose_size
        return dict(
            crops=np.array([r["crop"] for r in records], np.uint8).reshape(-1, s, s, 3),
            mesh=np.array([r["mesh"] for r in records], np.float32).reshape(-1, 468, 2),
            keypoints=np.array([r["keypoints"] for r in records], np.float32).reshape(-1, 4, 2),
            frame=np.array([r["frame"] for r in records], np.int32),
            face=np.array([r["face"] for r in records], np.int16),
            interocular=np.array([r["interocular"] for r in records], np.float32),
            score=np.array([r["score"] for r in records], np.float32),
            label=np.array(entry.label),
            method=np.array(entry.method),
            group=np.array(entry.group),
            rel=np.array(entry.rel),
            kind=np.array(entry.kind),
            frames_sampled=np.array(len(frames), np.int32),
            note=np.array("watermark cropped" if entry.watermarked else ""),
        )


def cache_folder(cache_dir: Path, spec: CacheSpec) -> Path:
    return Path(cache_dir) / f"faces-{spec.digest()}"


def cache_file(cache_dir: Path, spec: CacheSpec, entry: ManifestEntry) -> Path:
    return cache_folder(cache_dir, spec) / f"{entry.key}.npz"


def build_cache(
    entries: list[ManifestEntry],
    spec: CacheSpec,
    cache_dir: Path,
    *,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Path]:
    """Extract every entry not yet cached; returns {rel: npz path} for the files that exist."""
    jobs = [(e, cache_file(cache_dir, spec, e)) for e in entries]
    fill_cache(jobs, cache_folder(cache_dir, spec), FaceExtractor, spec, what="faces",
               workers=workers, progress=progress)
    return {e.rel: path for e, path in jobs if path.is_file()}


load_cached = load_npz


def main(argv: list[str] | None = None) -> int:
    import argparse

    from engines.manifest import read_manifest

    parser = argparse.ArgumentParser(description="Build the face-crop cache for a manifest.")
    parser.add_argument("--data", default=os.environ.get("VERITY_DATA_DIR"))
    parser.add_argument("--cache", default=".cache/faces")
    parser.add_argument("--config", help="training YAML whose `faces` section gives the spec")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spec = CacheSpec()
    if args.config:
        import yaml

        cfg = yaml.safe_load(Path(args.config).read_text())
        spec = CacheSpec.from_dict(
            {**cfg.get("faces", {}), "crop_scale": cfg["input"]["scale"],
             "crop_center_y": cfg["input"]["center_y"]}
        )
    entries = read_manifest(args.data)
    start = time.time()
    done = build_cache(entries, spec, Path(args.cache), workers=args.workers)
    log.info("face cache: %d files cached in %.0f s", len(done), time.time() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
