"""How often each detector finds a face in the project's face media (every file has one).

    python -m engines.data.detector_recall --data DIR [--frames 4] [--stills 100]

There are no box annotations, so this counts frames where at least one face was found,
by media kind, plus the cost per frame; it is what chose the default detector range.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="face media folder with manifest.csv (or env VERITY_DATA_DIR)")
    parser.add_argument("--frames", type=int, default=4, help="frames sampled per video")
    parser.add_argument("--stills", type=int, default=100, help="GAN stills to include (of ~600)")
    args = parser.parse_args(argv)
    entries = read_manifest(args.data)
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
