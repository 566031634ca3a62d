"""Tracking: stable ids across frames, optical flow between detections, track ends."""

import cv2
import numpy as np

from engines.faces import FaceDetections
from engines.faces.tracker import FaceTracker, TrackerConfig


def gray(image):
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def test_one_face_keeps_its_id_and_steady_keypoints(astronaut, detector):
    """A face moving with a known motion: one id, and keypoints steadier than the detector's."""
    h, w = astronaut.shape[:2]
    first = detector.detect(astronaut).keypoints[0]
    eye_distance = np.linalg.norm(first[1] - first[0])
    tracker = FaceTracker(TrackerConfig())
    ids, track_offsets, detector_offsets = set(), [], []
    for i in range(30):
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 0, 1 + 0.003 * i)
        matrix[:, 2] += (2.5 * i, -1.0 * i)
        frame = cv2.warpAffine(astronaut, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
        truth = first @ matrix[:, :2].T + matrix[:, 2]  # where the first detection moved to
        detected = detector.detect(frame)
        if i % 3 == 0:
            tracker.update_with_detections(detected, gray(frame), i / 10)
        else:
            tracker.propagate(gray(frame), i / 10)
        assert len(tracker.tracks) == 1
        ids.add(tracker.tracks[0].id)
        track_offsets.append(tracker.tracks[0].keypoints - truth)
        detector_offsets.append(detected.keypoints[0] - truth)
    assert ids == {1}
    track_offsets, detector_offsets = np.array(track_offsets), np.array(detector_offsets)
    # The track stays on the face (within a fifth of the eye distance of the true motion)...
    assert np.abs(track_offsets).max() < 0.2 * eye_distance
    # ...and moves far more smoothly than raw detections, which jitter by pixels.
    track_jitter = np.abs(np.diff(track_offsets, axis=0)).max(axis=(1, 2))
    detector_jitter = np.abs(np.diff(detector_offsets, axis=0)).max(axis=(1, 2))
    assert np.median(track_jitter) < 0.5 * np.median(detector_jitter)


def test_two_faces_get_distinct_ids_and_a_vanished_face_ends(astronaut, detector):
    small = cv2.resize(astronaut, (320, 240))
    both = np.concatenate([small, small], axis=1)
    both = cv2.copyMakeBorder(both, 120, 120, 0, 0, cv2.BORDER_REFLECT)
    one = both.copy()
    one[:, 320:] = 128  # the right-hand face leaves
    tracker = FaceTracker(TrackerConfig(max_missed=1))
    tracker.update_with_detections(detector.detect(both), gray(both), 0.0)
    assert len(tracker.tracks) == 2 and len({t.id for t in tracker.tracks}) == 2
    left_id = min(tracker.tracks, key=lambda t: t.box[0]).id
    ended = []
    for k in range(1, 4):
        ended += tracker.update_with_detections(detector.detect(one), gray(one), k * 0.3)
    assert [t.id for t in tracker.tracks] == [left_id]
    assert len(ended) == 1 and ended[0].id != left_id


def test_reset_ends_every_track_and_new_ids_continue(astronaut, detector):
    tracker = FaceTracker()
    tracker.update_with_detections(detector.detect(astronaut), gray(astronaut), 0.0)
    first = tracker.tracks[0].id
    assert [t.id for t in tracker.reset()] == [first]
    tracker.update_with_detections(detector.detect(astronaut), gray(astronaut), 1.0)
    assert tracker.tracks[0].id == first + 1


def test_flow_gives_up_on_a_cut_instead_of_drifting(astronaut, detector):
    tracker = FaceTracker()
    tracker.update_with_detections(detector.detect(astronaut), gray(astronaut), 0.0)
    noise = np.random.default_rng(0).integers(0, 255, astronaut.shape, dtype=np.uint8)
    lost = tracker.propagate(gray(noise), 0.1)
    assert len(lost) == 1 and tracker.tracks == []


def test_no_detections_no_tracks(astronaut):
    tracker = FaceTracker()
    assert tracker.update_with_detections(FaceDetections.empty(), gray(astronaut), 0.0) == []
    assert tracker.tracks == []
