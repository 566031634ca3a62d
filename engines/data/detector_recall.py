"""How often each detector finds a face in the project's face media (every file has one).

    python -m engines.data.detector_recall --data DIR [--frames 4] [--stills 100]
    python -m engines.data.detector_recall --data DIR --followed [--seconds 4]

There are no box annotations, so this counts frames where at least one face was found,
by media kind, plus the cost per frame; it is what chose the default detector range.

`--followed` measures what the agent sees instead: every video's first seconds at 10
analysed fps through the follower (detection every 3rd frame, optical-flow tracking between),
with the full detector on every detection, the short range alone, and the full detector on
every k-th detection with the quick pass between (faces.full_detect_every), and that with the
quick pass skipped while every face stays still (faces.still_shift); it counts the analysed
frames in which a face was followed, and the detector's milliseconds per analysed frame. It is
what chose faces.full_detect_every and faces.still_shift.
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np

from engines.manifest import read_manifest
from engines.faces.detectors import MediaPipeDetectorConfig, create_detector


def sampled_frames(entry, frames: int):
    import av
    import cv2

    if entry.kind == "image":
        image = cv2.imread(str(entry.path))
        if image is not None:
            yield image
        return
    with av.open(str(entry.path)) as container:
        stream = container.streams.video[0]
        total = stream.frames or 300
        wanted = set(np.linspace(0, total - 1, frames).astype(int).tolist())
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted:
                yield frame.to_ndarray(format="bgr24")


def analysed_frames(entry, seconds: float, fps: float = 10.0):
    """(image, time) of a video's first `seconds`, thinned to `fps` as the agent's ingest does."""
    import av

    with av.open(str(entry.path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_t = 0.0
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            if t > seconds:
                return
            if t + 1e-6 >= next_t:
                next_t += 1.0 / fps
                yield frame.to_ndarray(format="bgr24"), t


def followed_recall(entries, seconds: float, full_every: tuple[int, ...],
                    still: tuple[float, ...] = ()) -> None:
    from engines.faces.align import AlignSpec
    from engines.faces.follower import FaceFollower
    from engines.faces.tracker import FaceTracker, TrackerConfig

    both = create_detector(MediaPipeDetectorConfig(range="both"))
    short = create_detector(MediaPipeDetectorConfig(range="short"))
    settings = {"full every detection": (both, 1, 0.0), "short range only": (short, 1, 0.0)}
    settings.update({f"full 1 in {k} detections, quick between": (both, k, 0.0) for k in full_every})
    settings.update({f"full 1 in 4, quick skipped if still ({shift:g})": (both, 4, shift) for shift in still})
    videos = [e for e in entries if e.kind == "video"]
    followed, total = collections.Counter(), collections.Counter()
    detect_s, quick, skipped = collections.Counter(), collections.Counter(), collections.Counter()
    for entry in videos:
        frames = list(analysed_frames(entry, seconds))
        for name, (detector, k, shift) in settings.items():
            follower = FaceFollower(detector, FaceTracker(TrackerConfig()), AlignSpec(), 3,
                                    full_every=k, still_shift=shift)
            for image, t in frames:
                faces, _ = follower.step(image, t)
                followed[(name, entry.label)] += bool(faces)
                total[(name, entry.label)] += 1
            detect_s[name] += follower.seconds["detect"]
            quick[name] += follower.quick_detections_run
            skipped[name] += follower.detections_skipped
    print(f"{'setting':42} {'real frames':>14} {'fake frames':>14}  detector ms / analysed frame")
    for name in settings:
        frames = total[(name, 'real')] + total[(name, 'fake')]
        cells = " ".join(f"{followed[(name, lab)]:>6}/{total[(name, lab)]:<7}" for lab in ("real", "fake"))
        print(f"{name:42} {cells}  {1000 * detect_s[name] / max(frames, 1):.2f}"
              + (f" ({quick[name]} quick passes)" if quick[name] else "")
              + (f" ({skipped[name]} skipped while still)" if skipped[name] else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="face media folder with manifest.csv (or env VERITY_DATA_DIR)")
    parser.add_argument("--frames", type=int, default=4, help="frames sampled per video")
    parser.add_argument("--stills", type=int, default=100, help="GAN stills to include (of ~600)")
    parser.add_argument("--followed", action="store_true",
                        help="recall through the follower (tracking), by faces.full_detect_every")
    parser.add_argument("--seconds", type=float, default=4.0, help="with --followed: per video")
    parser.add_argument("--full-every", default="2,4,8",
                        help="with --followed: the faces.full_detect_every values to compare")
    parser.add_argument("--still", default="0.05",
                        help="with --followed: faces.still_shift values to compare (full 1 in 4)")
    args = parser.parse_args(argv)
    entries = read_manifest(args.data)
    if args.followed:
        followed_recall(entries, args.seconds, tuple(int(k) for k in args.full_every.split(",")),
                        tuple(float(v) for v in args.still.split(",") if v))
        return 0
    gan = [e for e in entries if e.kind == "image" and e.label == "fake"][: args.stills]
    chosen = [e for e in entries if e.kind == "video" or (e.kind == "image" and e.label == "real")] + gan
    detectors = {r: create_detector(MediaPipeDetectorConfig(range=r)) for r in ("short", "full", "both")}
    found, total, seconds = collections.Counter(), collections.Counter(), collections.Counter()
    for entry in chosen:
        category = f"{entry.kind}/{entry.label}"
        for image in sampled_frames(entry, args.frames):
            total[category] += 1
            for name, detector in detectors.items():
                start = time.perf_counter()
                found[(name, category)] += len(detector.detect(image)) > 0
                seconds[name] += time.perf_counter() - start
    frames = sum(total.values())
    print(f"{'range':6} " + " ".join(f"{c:>14}" for c in total) + "  ms/frame")
    for name in detectors:
        cells = " ".join(f"{found[(name, c)]:>6}/{total[c]:<7}" for c in total)
        print(f"{name:6} {cells}  {1000 * seconds[name] / frames:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
