import math

import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.evaluation.calibration import calibrate, score_vertices
from facerecon.evaluation.heldout import (DEFORMATION_RMS_RANGE_MM, FOV_RANGE_DEG, HELDOUT_YAW_BINS, HeldoutScene,
                                          generate_heldout_set, heldout_yaw_bin, horizontal_fov_deg)
from facerecon.evaluation.image_formation import Lighting, PointLight, Sensor, render_photo
from facerecon.render import PinholeCamera

SIZE = 96


@pytest.fixture(scope="module")
def scene(ict_model):
    return HeldoutScene(ict_model, texture_size=256)


@pytest.fixture(scope="module")
def faces(ict_model, scene):
    return generate_heldout_set(ict_model, 4, seed=2, image_size=SIZE, scene=scene)


def _face_edges(model):
    tri = model.triangles.numpy()
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    face = np.zeros(model.num_vertices, dtype=bool)
    face[model.regions["narrow_face"].numpy()] = True
    return edges[face[edges].all(1)]


def test_same_seed_same_images_and_face_i_does_not_depend_on_n(ict_model, scene, faces):
    again = generate_heldout_set(ict_model, 1, seed=2, image_size=SIZE, scene=scene)
    np.testing.assert_array_equal(again[0].image, faces[0].image)
    np.testing.assert_array_equal(again[0].gt_vertices, faces[0].gt_vertices)
    other = generate_heldout_set(ict_model, 1, seed=3, image_size=SIZE, scene=scene)
    assert not np.array_equal(other[0].image, faces[0].image)
    for face in faces:
        assert face.image.shape == (SIZE, SIZE, 3) and face.image.dtype == np.float32
        assert np.isfinite(face.image).all() and 0.0 <= face.image.min() and face.image.max() <= 1.0
        assert face.off_model and face.truth.appearance.sh is None


def test_deformation_is_2_to_4_mm_rms_smooth_and_beyond_the_model(ict_model, faces):
    edges = _face_edges(ict_model)
    region = ict_model.regions["narrow_face"].numpy()
    mean = ict_model.mean.double().numpy()
    lengths = np.linalg.norm(mean[edges[:, 0]] - mean[edges[:, 1]], axis=1)
    for face in faces:
        with torch.no_grad():
            drawn = ict_model.vertices(torch.as_tensor(face.truth.params.identity, dtype=torch.float32),
                                       torch.as_tensor(face.truth.params.expression, dtype=torch.float32))[0].double().numpy()
        offset = face.gt_vertices.astype(np.float64) - drawn
        rms = float(np.sqrt(np.mean(np.sum(offset[region] ** 2, 1))))
        assert DEFORMATION_RMS_RANGE_MM[0] - 0.01 <= rms <= DEFORMATION_RMS_RANGE_MM[1] + 0.01
        np.testing.assert_allclose(rms, face.displacement_rms_mm, atol=0.01)
        # low frequency: the offset changes by well under a millimetre per millimetre along the surface
        slope = np.linalg.norm(offset[edges[:, 0]] - offset[edges[:, 1]], axis=1) / lengths
        assert np.percentile(slope, 99) < 1.0 and np.median(slope) < 0.2
    floor = calibrate(faces, ict_model.view("head"))
    for face in faces:
        assert np.mean(floor.floor[face.name]) > 0.2  # the model cannot represent it exactly (mm)


def test_focal_yaw_and_pitch_ranges_and_the_fov_override(ict_model, scene, faces):
    for i, face in enumerate(faces):
        assert heldout_yaw_bin(face.yaw_deg) == i % len(HELDOUT_YAW_BINS)
        assert FOV_RANGE_DEG[0] <= horizontal_fov_deg(face) <= FOV_RANGE_DEG[1]
        assert abs(face.pitch_deg) <= 20.0 and abs(face.roll_deg) <= 6.0
        inside = (face.landmarks2d >= 0).all(1) & (face.landmarks2d < SIZE).all(1)
        assert inside.all()
    wide = generate_heldout_set(ict_model, 2, seed=2, image_size=SIZE, fov_deg=70.0, scene=scene)
    for a, b in zip(wide, faces):
        np.testing.assert_allclose(horizontal_fov_deg(a), 70.0, atol=1e-9)
        np.testing.assert_array_equal(a.gt_vertices, b.gt_vertices)
        assert a.yaw_deg == b.yaw_deg
        box = lambda f: np.ptp(f.landmarks2d, axis=0).max()  # noqa: E731
        assert abs(box(a) / box(b) - 1.0) < 0.2  # placed at about the same size in the image
    with pytest.raises(UsageError):
        generate_heldout_set(ict_model, 1, fov_deg=90.0, scene=scene)
    with pytest.raises(UsageError):
        generate_heldout_set(ict_model.view("head"), 1)


def test_a_side_light_casts_the_nose_shadow_that_sh_shading_cannot(ict_model, scene):
    """Frontal mean face, one point light far to its left: the cheek beside the nose on the right
    is in the nose's shadow although it faces the light (an SH / unshadowed model lights it)."""
    verts = ict_model.mean.double().numpy()
    size = 160
    focal = size / 2 / math.tan(math.radians(10.0))
    cam = PinholeCamera(torch.zeros(1, 3), torch.tensor([[0.0, 0.0, -1200.0]]), torch.tensor([focal]),
                        torch.tensor([[size / 2, size / 2]]), (size, size))
    lm = ict_model.landmark_points(ict_model.mean[None].float())[0].double().numpy()
    aim = lm[30] + [0.0, 0.0, -1200.0]
    light = PointLight(aim + [-900.0, 100.0, 350.0], np.full(3, 3.0), aim=aim)
    lighting = Lighting([light], np.zeros(3))
    materials = scene.paint(np.random.default_rng(0))
    args = (verts, scene.triangles, cam, materials, lighting, np.zeros((size, size, 3)), Sensor(noise_read=0.0,
                                                                                                noise_shot=0.0))
    shadowed = render_photo(*args, np.random.default_rng(0))
    plain = render_photo(*args, np.random.default_rng(0), shadows=False)
    # beside the nose on the side away from the light (+x, the image's right), between the eyes and the
    # nostrils: points that face the light (lit without shadows) but that the nose hides from it
    to_px = lambda p: cam.project(torch.as_tensor(np.asarray(p)[None, None], dtype=torch.float32))[0, 0].numpy()  # noqa: E731
    tip, right, top, bottom = to_px(lm[30]), to_px(lm[30] + [25.0, 0.0, 0.0]), to_px(lm[27]), to_px(lm[33])
    box = (slice(int(top[1]), int(bottom[1])), slice(int(tip[0]) + 1, int(right[0])))
    cast = (shadowed.shadow[box] < 0.3) & (plain.radiance[box].mean(-1) > 0.02) & (shadowed.alpha[box] > 0.99)
    assert cast.sum() >= 10
    assert plain.radiance[box][cast].mean() > 5 * shadowed.radiance[box][cast].mean()
    left = (slice(int(top[1]), int(bottom[1])), slice(int(2 * tip[0] - right[0]), int(tip[0]) - 1))
    assert np.median(shadowed.shadow[left][shadowed.alpha[left] > 0.99]) > 0.9  # the side facing the light is lit


def test_a_tiny_set_scores_end_to_end_through_calibrate(ict_model, faces):
    view = ict_model.view("head")
    cal = calibrate(faces[:2], view)
    ids = view.parent_vertices.numpy()
    for face in faces[:2]:
        nothing, floor = np.mean(cal.nothing[face.name]), np.mean(cal.floor[face.name])
        assert nothing > floor > 0.0
        perfect = score_vertices(face, view, face.gt_vertices[ids].astype(np.float64))
        assert np.mean(perfect.distances) < 0.05 * floor
