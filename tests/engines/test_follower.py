"""The follower's detection schedule: the quick pass between full detections while faces are near."""

import cv2
import numpy as np

from engines.faces.align import AlignSpec
from engines.faces.detectors.base import QuickDetector
from engines.faces.follower import FaceFollower
from engines.faces.tracker import FaceTracker, TrackerConfig


class FullOnly:
    """The detector's full pass alone (a plug-in without a quick pass)."""

    name = "full-only"

    def __init__(self, inner):
        self.inner = inner

    def detect(self, image):
        return self.inner.detect(image)


def follow(detector, frames, full_every, detect_every=1):
    follower = FaceFollower(detector, FaceTracker(TrackerConfig()), AlignSpec(), detect_every,
                            full_every=full_every)
    seen = [follower.step(frame, i / 10)[0] for i, frame in enumerate(frames)]
    return follower, seen


def moving(image, n):
    h, w = image.shape[:2]
    out = []
    for i in range(n):
        matrix = np.float32([[1, 0, 2.0 * i], [0, 1, -1.0 * i]])
        out.append(cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT))
    return out


def near(astronaut, detector):
    """The astronaut's face filling about half the frame's height, as in a video call."""
    x1, y1, x2, y2 = detector.detect(astronaut).boxes[0]
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, (y2 - y1)
    window = astronaut[max(int(cy - side), 0):int(cy + side), max(int(cx - 1.33 * side), 0):int(cx + 1.33 * side)]
    return cv2.resize(window, (640, 480))


def test_near_face_quick_passes_between_full_ones_and_the_face_is_never_lost(astronaut, detector):
    assert isinstance(detector, QuickDetector)
    frames = moving(near(astronaut, detector), 12)
    follower, seen = follow(detector, frames, full_every=4)
    assert follower.detections_run == 12
    assert follower.quick_detections_run == 9  # detections 1-3, 5-7, 9-11
    assert all(len(faces) == 1 for faces in seen)
    assert len({faces[0].track.id for faces in seen}) == 1


def test_a_small_face_keeps_every_detection_full(astronaut, detector):
    # The astronaut's face at a tenth of a 1280x720 frame's longer side: MediaPipe's short
    # range does not see it, its full range does.
    small = cv2.resize(astronaut, (640, 480))
    canvas = np.full((720, 1280, 3), 90, np.uint8)
    canvas[120:600, 320:960] = small
    frames = moving(canvas, 8)
    follower, seen = follow(detector, frames, full_every=4)
    assert sum(bool(faces) for faces in seen) >= 7, "the full detector finds the small face"
    box = seen[-1][0].box
    assert box[3] - box[1] < 0.18 * 1280
    assert follower.quick_detections_run == 0


def test_full_every_one_or_a_detector_without_a_quick_pass_is_always_full(astronaut, detector):
    frames = moving(astronaut, 6)
    follower, _ = follow(detector, frames, full_every=1)
    assert follower.quick_detections_run == 0
    follower, seen = follow(FullOnly(detector), frames, full_every=4)
    assert follower.quick_detections_run == 0 and follower.detections_run == 6
    assert all(len(faces) == 1 for faces in seen)


def shifted(image, n, step):
    h, w = image.shape[:2]
    return [cv2.warpAffine(image, np.float32([[1, 0, step * i], [0, 1, 0]]), (w, h),
                           borderMode=cv2.BORDER_REFLECT) for i in range(n)]


def test_a_still_face_skips_the_quick_passes_and_keeps_the_full_schedule(astronaut, detector):
    frames = shifted(near(astronaut, detector), 24, 0.5)  # a seated speaker: half a pixel a frame
    follower = FaceFollower(detector, FaceTracker(TrackerConfig()), AlignSpec(), 3,
                            full_every=4, still_shift=0.05)
    seen = [follower.step(frame, i / 10)[0] for i, frame in enumerate(frames)]
    # Detection rounds on frames 0, 3, ..., 21: the full ones (rounds 0 and 4) run, the quick
    # ones between are skipped.
    assert follower.detections_run == 2 and follower.quick_detections_run == 0
    assert follower.detections_skipped == 6
    assert all(len(faces) == 1 for faces in seen)  # optical flow followed it in between
    assert len({faces[0].track.id for faces in seen}) == 1
    # Where the detector itself would put it on the last frame, within 5% of its height.
    followed, truth = seen[-1][0].box, detector.detect(frames[-1]).boxes[0]
    height = truth[3] - truth[1]
    assert np.abs((followed[:2] + followed[2:]) / 2 - (truth[:2] + truth[2:]) / 2).max() < 0.05 * height


def test_a_moving_face_gets_every_quick_pass(astronaut, detector):
    # 10 px a frame, 20 px by the next round's check: over 5% of its ~260 px height
    frames = shifted(near(astronaut, detector), 16, 10.0)
    follower = FaceFollower(detector, FaceTracker(TrackerConfig()), AlignSpec(), 3,
                            full_every=4, still_shift=0.05)
    seen = [follower.step(frame, i / 10)[0] for i, frame in enumerate(frames)]
    assert follower.detections_skipped == 0
    assert follower.detections_run == 6 and follower.quick_detections_run == 4
    assert all(len(faces) == 1 for faces in seen)
