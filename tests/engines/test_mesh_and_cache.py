"""Face mesh on the scikit-image astronaut, and the face cache (synthetic and, when the face
media folder is present, one real file)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engines.data.cache import CacheSpec, FaceExtractor, build_cache, load_cached, sample_indices
from engines.manifest import read_manifest


@pytest.fixture(scope="module")
def astronaut_bgr():
    skimage_data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)


def test_mesh_finds_the_astronaut(astronaut_bgr):
    pytest.importorskip("mediapipe")
    from engines.faces.mesh import FaceMesh

    with FaceMesh() as mesh:
        points = mesh.largest(astronaut_bgr)
        assert mesh.landmarks(np.zeros((64, 64, 3), np.uint8)).shape == (0, 468, 2)
    assert points.shape == (468, 2)
    # The face is in the upper middle of the 512x512 photo.
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    assert 120 < x0 < x1 < 330 and 40 < y0 < y1 < 230


def test_sample_indices():
    assert sample_indices(0, 5).tolist() == []
    assert sample_indices(3, 5).tolist() == [0, 1, 2]
    idx = sample_indices(500, 40)
    assert len(idx) == 40 and idx[0] == 0 and idx[-1] == 499


def test_cache_a_still(tmp_path, astronaut_bgr):
    pytest.importorskip("mediapipe")
    cv2.imwrite(str(tmp_path / "a.png"), astronaut_bgr)
    (tmp_path / "manifest.csv").write_text(
        "path,label,kind,method,group,source,notes\na.png,real,image,,astro,skimage,\n"
    )
    spec = CacheSpec(loose_size=96)
    done = build_cache(read_manifest(tmp_path), spec, tmp_path / "cache", progress=False)
    data = load_cached(done["a.png"])
    assert data["crops"].shape == (1, 96, 96, 3)
    assert np.isfinite(data["mesh"]).all()
    assert data["interocular"][0] > spec.min_interocular
    # Landmarks lie inside the loose crop, around its centre.
    assert 0 < data["mesh"][0][:, 0].min() and data["mesh"][0][:, 0].max() < 96
    assert str(data["label"]) == "real" and str(data["group"]) == "astro"


@pytest.mark.data
def test_cache_one_real_video(data_dir, tmp_path):
    pytest.importorskip("mediapipe")
    entries = [e for e in read_manifest(data_dir) if e.kind == "video" and not e.is_fake]
    entry = entries[0]
    data = FaceExtractor(CacheSpec(frames_per_video=4, loose_size=96)).extract(entry)
    assert len(data["crops"]) >= 1
    assert set(np.unique(data["frame"])).issubset(set(range(10_000)))
