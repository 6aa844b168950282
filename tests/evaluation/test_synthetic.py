import json

import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.evaluation.synthetic import (DISPLACEMENT_RMS_RANGE, generate_synthetic_set,
                                            load_or_generate_synthetic_set, load_synthetic_set, read_manifest)


@pytest.fixture(scope="module")
def on_model(ict_model):
    return generate_synthetic_set(ict_model, 2, seed=5, image_size=128)


@pytest.fixture(scope="module")
def off_model(ict_model):
    return generate_synthetic_set(ict_model, 2, seed=5, off_model=True, image_size=128)


def _face_edges(model):
    tri = model.triangles.numpy()
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    face = np.zeros(model.num_vertices, dtype=bool)
    face[model.regions["narrow_face"].numpy()] = True
    return edges[face[edges].all(1)]


def test_same_seed_gives_identical_faces_and_face_i_does_not_depend_on_n(ict_model, on_model):
    again = generate_synthetic_set(ict_model, 1, seed=5, image_size=128)
    np.testing.assert_array_equal(again[0].image, on_model[0].image)
    np.testing.assert_array_equal(again[0].gt_vertices, on_model[0].gt_vertices)
    assert again[0].yaw_deg == on_model[0].yaw_deg
    other = generate_synthetic_set(ict_model, 1, seed=6, image_size=128)
    assert not np.array_equal(other[0].image, on_model[0].image)
    assert not np.array_equal(on_model[0].image, on_model[1].image)


def test_images_are_finite_8bit_levels_in_unit_range(on_model, off_model):
    for face in on_model + off_model:
        assert face.image.shape == (128, 128, 3) and face.image.dtype == np.float32
        assert np.isfinite(face.image).all() and face.image.min() >= 0 and face.image.max() <= 1
        np.testing.assert_allclose(face.image * 255, np.round(face.image * 255), atol=1e-3)
        assert face.image.std() > 0.05  # a face on clutter, not a blank frame


def test_ground_truth_is_consistent(ict_model, on_model):
    for face in on_model:
        truth = face.truth
        assert face.gt_vertices.shape == (ict_model.num_vertices, 3)
        assert truth.params.identity.shape == (1, ict_model.num_identity)
        assert ((truth.params.expression >= 0) & (truth.params.expression <= 1)).all()
        assert truth.camera.image_size == face.image_size
        with torch.no_grad():
            v = ict_model.vertices(torch.as_tensor(truth.params.identity, dtype=torch.float32),
                                   torch.as_tensor(truth.params.expression, dtype=torch.float32))[0].numpy()
        np.testing.assert_allclose(face.gt_vertices, v, atol=1e-3)
        lm68 = ict_model.landmark_points(torch.as_tensor(face.gt_vertices)[None])[0].numpy()
        np.testing.assert_allclose(face.landmarks7, lm68[[36, 39, 42, 45, 33, 48, 54]], atol=1e-4)
        np.testing.assert_allclose(face.landmarks2d, face.project(lm68), atol=1e-3)
        assert truth.appearance.sh.shape == (1, 9, 3) and face.displacement is None and face.displacement_rms_mm == 0.0
        assert -90 <= face.yaw_deg <= 90 and -30 <= face.pitch_deg <= 30 and -10 <= face.roll_deg <= 10


def test_landmarks_project_inside_the_image(on_model, off_model):
    for face in on_model + off_model:
        assert face.landmarks2d.shape == (68, 2)
        assert (face.landmarks2d > 0).all() and (face.landmarks2d < 128).all()


def test_off_model_displacement_is_in_its_band_and_smooth(ict_model, off_model):
    face_ids = ict_model.regions["narrow_face"].numpy()
    edges = _face_edges(ict_model)
    for face in off_model:
        d = face.displacement.astype(np.float64)
        rms = np.sqrt(np.mean(d[face_ids] ** 2))
        assert DISPLACEMENT_RMS_RANGE[0] <= rms <= DISPLACEMENT_RMS_RANGE[1]
        assert rms == pytest.approx(face.displacement_rms_mm, rel=1e-5)
        assert abs(face.yaw_deg) <= 60 and abs(face.pitch_deg) <= 20
        with torch.no_grad():
            base = ict_model.vertices(torch.as_tensor(face.truth.params.identity, dtype=torch.float32),
                                      torch.as_tensor(face.truth.params.expression, dtype=torch.float32))[0].numpy()
        moved = np.linalg.norm(face.gt_vertices - base, axis=1)
        np.testing.assert_allclose(moved[face_ids], np.abs(d[face_ids]), atol=1e-3)  # along the normals
        # band-limited: the offset changes by a fraction of a mm per mm (white noise: several mm per edge)
        length = np.linalg.norm(base[edges[:, 0]] - base[edges[:, 1]], axis=1)
        slope = np.abs(d[edges[:, 0]] - d[edges[:, 1]]) / length
        assert slope.max() < 0.35
        assert np.abs(d[edges[:, 0]] - d[edges[:, 1]]).max() < rms


def test_yaw_range_argument(ict_model):
    faces = generate_synthetic_set(ict_model, 2, seed=1, image_size=64, yaw_range=(20.0, 25.0))
    assert all(20.0 <= f.yaw_deg <= 25.0 for f in faces)


def test_written_set_loads_back_identically(ict_model, tmp_path):
    faces = generate_synthetic_set(ict_model, 2, seed=2, out_dir=tmp_path, off_model=True, image_size=64)
    manifest = read_manifest(tmp_path)
    assert (manifest["seed"], manifest["n"], manifest["off_model"], manifest["image_size"]) == (2, 2, True, 64)
    assert [f["image"] for f in manifest["faces"]] == ["face_0000.png", "face_0001.png"]
    assert (tmp_path / "face_0001_gt.npz").is_file()
    json.dumps(manifest)
    loaded = load_synthetic_set(tmp_path)
    for a, b in zip(faces, loaded):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.gt_vertices, b.gt_vertices)
        np.testing.assert_array_equal(a.displacement, b.displacement)
        assert (a.focal, a.yaw_deg, a.displacement_rms_mm) == (b.focal, b.yaw_deg, b.displacement_rms_mm)


def test_a_stored_set_is_reused_only_when_it_is_the_same_set(ict_model, tmp_path):
    generate_synthetic_set(ict_model, 1, seed=2, out_dir=tmp_path, image_size=64)
    png = tmp_path / "face_0000.png"
    png.write_bytes(png.read_bytes())  # a marker: regenerating would rewrite the file
    stamp = png.stat().st_mtime_ns
    same = load_or_generate_synthetic_set(ict_model, 1, seed=2, out_dir=tmp_path, image_size=64)
    assert png.stat().st_mtime_ns == stamp and same[0].image.shape == (64, 64, 3)
    other = load_or_generate_synthetic_set(ict_model, 1, seed=3, out_dir=tmp_path, image_size=64)
    assert read_manifest(tmp_path)["seed"] == 3
    assert not np.array_equal(other[0].image, same[0].image)


def test_needs_the_full_model(ict_head):
    with pytest.raises(UsageError, match="full model"):
        generate_synthetic_set(ict_head, 1, seed=0)
