"""End to end on a real photo (scikit-image's astronaut) and on images the tests make."""
import dataclasses
import json

import numpy as np
import pytest
from scipy.spatial import cKDTree
from skimage import data

from facerecon.errors import NoFaceError, UsageError
from facerecon.io import read_glb, read_obj_mesh, read_ply, validate_glb


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut().astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def reconstructor(ict_dir):
    from facerecon.pipeline import Reconstructor

    with Reconstructor() as rec:
        yield rec


@pytest.fixture(scope="module")
def fast_result(reconstructor, astronaut):
    return reconstructor.reconstruct(astronaut, mode="fast")[0]


def test_fast_mode_sits_on_the_astronaut(fast_result):
    rec = fast_result
    # the model's landmarks land on the detected ones (face is ~100 px wide in this 512 px photo)
    assert rec.landmark_error_px() < 2.5
    yaw, pitch, roll = rec.pose_deg
    assert abs(yaw) < 20 and abs(roll) < 15
    # the projected face centre is inside the detector's box
    centre = rec.projected_landmarks()[rec.landmark_weights > 0].mean(0)
    x0, y0, x1, y1 = rec.landmarks.box
    assert x0 < centre[0] < x1 and y0 < centre[1] < y1
    expression = rec.params.expression[0]
    assert expression.min() >= 0 and expression.max() <= 1
    # she smiles: the smile blendshapes are active
    names = list(rec.model.expression_names)
    smile = expression[names.index("mouthSmile_L")] + expression[names.index("mouthSmile_R")]
    assert smile > 0.2
    assert rec.quality.to_dict() == {}


def test_full_mode_is_no_worse_than_fast_on_landmarks(reconstructor, astronaut, fast_result):
    full = reconstructor.reconstruct(astronaut, mode="full")[0]
    assert full.mode == "full"
    assert full.sh is not None and np.isfinite(full.sh).all()
    assert full.albedo is not None and full.albedo.shape == (full.view.num_vertices, 3)
    if not full.quality.full_mode_reverted_to_fast:
        assert full.landmark_error_px() <= fast_result.landmark_error_px() * 1.25 + 0.5
    # skin albedo of a real face is reddish: R > B on average over the face
    assert full.albedo[:, 0].mean() > full.albedo[:, 2].mean()


def test_full_mode_reverts_when_the_photometric_fit_drifts_from_the_landmarks(reconstructor, astronaut, fast_result,
                                                                              monkeypatch):
    # a photometric fit that ends far from the points (as on a grayscale photo whose hair the
    # silhouette term took for the face): the landmark polish would hide it, the drift guard must not
    from facerecon.fitting.result import FitResult

    real_fit = reconstructor.full_fitter.fit

    def drifting(*args, **kwargs):
        out = real_fit(*args, **kwargs)
        d = out.diagnostics
        return FitResult(out.state, out.correspondence, dataclasses.replace(d, residual_px=d.residual_px * 20 + 5),
                         out.corrective)

    monkeypatch.setattr(reconstructor.full_fitter, "fit", drifting)
    full = reconstructor.reconstruct(astronaut, mode="full")[0]
    reason = full.quality.full_mode_reverted_to_fast
    assert reason is not None and reason.startswith("photometric fit drifted from the landmarks")
    np.testing.assert_allclose(full.params.identity, fast_result.params.identity)
    assert full.sh is not None  # the full fit's light is kept for the texture


def test_save_writes_every_output_and_they_read_back(fast_result, tmp_path):
    fast_result.save(tmp_path)
    for name in ("mesh.obj", "mesh.mtl", "albedo.png", "mesh.ply", "mesh.glb", "params.json", "overlay.png",
                 "landmarks.json"):
        assert (tmp_path / name).is_file(), name
    # the files hold the vertices that triangles use (the mesh compacted)
    verts = fast_result.mesh.compact().vertices
    obj_v, obj_f = read_obj_mesh(tmp_path / "mesh.obj")
    np.testing.assert_allclose(obj_v, verts, atol=1e-3)
    ply_v, ply_f, ply_c = read_ply(tmp_path / "mesh.ply")
    np.testing.assert_allclose(ply_v, verts, atol=1e-3)
    assert validate_glb(tmp_path / "mesh.glb") == []
    glb = read_glb(tmp_path / "mesh.glb")
    from facerecon.models.arkit import ARKIT_NAMES, ICT_EXTRAS

    assert glb["target_names"] == list(ARKIT_NAMES) + list(ICT_EXTRAS)
    params = json.loads((tmp_path / "params.json").read_text())
    assert params["model"]["name"] == "ict" and len(params["expression"]) == 53
    assert list(params["arkit_blendshapes"]) == list(ARKIT_NAMES)
    assert "map_Kd albedo.png" in (tmp_path / "mesh.mtl").read_text()
    assert set(params["pose"]) >= {"yaw_deg", "pitch_deg", "roll_deg", "translation_mm"}
    assert params["camera"]["focal_px"] > 0


def test_glb_morph_targets_reproduce_the_fitted_expression(fast_result, tmp_path):
    from facerecon.io import read_glb

    fast_result.mesh.export(tmp_path / "face.glb")
    glb = read_glb(tmp_path / "face.glb")
    pos = glb["positions"] * 1000.0
    names = glb["target_names"]
    targets = np.stack([glb["morph_targets"][n] for n in names]) * 1000.0  # (K, N, 3)
    posed = pos + np.einsum("k,knc->nc", np.asarray(glb["weights"]), targets)
    # every written vertex (after the UV-seam split) is a fitted vertex, to the sparse threshold
    dist, _ = cKDTree(fast_result.vertices()).query(posed)
    assert dist.max() < 0.5
    assert np.median(dist) < 0.01


def test_blank_image_has_no_face(reconstructor):
    with pytest.raises(NoFaceError):
        reconstructor.reconstruct(np.full((240, 320, 3), 0.5, dtype=np.float32))


def test_bad_mode_and_bad_arrays(reconstructor, astronaut):
    with pytest.raises(UsageError, match="mode"):
        reconstructor.reconstruct(astronaut, mode="slow")
    with pytest.raises(UsageError, match="NaN"):
        bad = astronaut.copy()
        bad[0, 0, 0] = np.nan
        reconstructor.reconstruct(bad)
    with pytest.raises(UsageError, match="RGB"):
        reconstructor.reconstruct(np.zeros((10, 10, 5), dtype=np.float32))


def test_grayscale_and_uint8_photos_work(reconstructor, astronaut):
    gray = (astronaut.mean(-1) * 255).astype(np.uint8)
    rec = reconstructor.reconstruct(gray)[0]
    assert rec.landmark_error_px() < 3.0


def test_two_faces_are_flagged_and_both_can_be_returned(ict_dir, astronaut):
    from skimage.transform import rescale

    from facerecon.pipeline import Reconstructor

    face = astronaut[0:220, 120:320]
    small = rescale(face, 0.8, channel_axis=2, anti_aliasing=True).astype(np.float32)
    canvas = np.full((260, 420, 3), 0.6, dtype=np.float32)
    canvas[10:10 + face.shape[0], 0:face.shape[1]] = face
    canvas[40:40 + small.shape[0], 230:230 + small.shape[1]] = small
    with Reconstructor(max_faces=2) as rec:
        results = rec.reconstruct(canvas)
    assert len(results) == 2
    assert all(r.quality.multiple_faces for r in results)
    assert results[0].landmarks.box[2] - results[0].landmarks.box[0] >= results[1].landmarks.box[2] - results[1].landmarks.box[0]


def test_exif_focal_length_is_used_and_reported(reconstructor, astronaut, tmp_path):
    from PIL import Image

    img = Image.fromarray((astronaut * 255).astype(np.uint8))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 50  # FocalLengthIn35mmFilm, in the Exif sub-IFD
    img.save(tmp_path / "with.jpg", exif=exif.tobytes())
    img.save(tmp_path / "without.jpg")
    with_exif = reconstructor.reconstruct(tmp_path / "with.jpg")[0]
    assert with_exif.focal_source == "exif:FocalLengthIn35mmFilm"
    # 50 mm on a 36 x 24 frame: f = 50 / 43.27 x the image diagonal
    assert with_exif.state.camera.focal[0] == pytest.approx(50 / 43.27 * np.hypot(512, 512), rel=0.01)
    assert with_exif.to_dict()["camera"]["focal_source"] == "exif:FocalLengthIn35mmFilm"
    assert reconstructor.reconstruct(tmp_path / "without.jpg")[0].focal_source == "estimated"
    assert reconstructor.reconstruct(astronaut, focal=700.0)[0].state.camera.focal[0] == pytest.approx(700.0)


def test_landmarks_json_has_the_fitted_68_points_on_both_conventions(fast_result, tmp_path):
    fast_result.save(tmp_path)
    lm = json.loads((tmp_path / "landmarks.json").read_text())
    aflw, w300 = lm["fitted_ibug68"], lm["fitted_ibug68_contour"]
    p2, p3 = np.array(aflw["points_2d_px"]), np.array(aflw["points_3d_camera_mm"])
    assert p2.shape == (68, 2) and p3.shape == (68, 3) and (p3[:, 2] < 0).all()
    # the 2D points are the projection of the 3D ones, and sit near the detected 68 points
    np.testing.assert_allclose(fast_result.state.project(np.array(aflw["points_3d_model_mm"])), p2, atol=0.01)
    detected = np.array(lm["ibug68"]["points"])
    assert np.median(np.linalg.norm(p2 - detected, axis=1)) < 6.0
    contour = np.array(w300["points_2d_px"])
    np.testing.assert_allclose(contour[17:], p2[17:])  # only the jaw line differs
    assert "AFLW2000-3D" in aflw["convention"] and "300W" in w300["convention"]


def test_a_reconstruction_is_light_to_pickle_and_works_after(fast_result, tmp_path):
    import pickle

    blob = pickle.dumps(fast_result)
    assert len(blob) < 5_000_000, len(blob)
    assert b"identity_basis" not in blob  # the model's bases stay behind
    again = pickle.loads(blob)
    np.testing.assert_allclose(again.vertices(), fast_result.vertices())
    again.save(tmp_path)
    assert (tmp_path / "mesh.glb").is_file()


def test_the_error_model_pass_whitens_by_the_correlated_noise(reconstructor, astronaut):
    from facerecon.fitting.landmark_fit import CorrelatedNoise
    from facerecon.pipeline import PipelineConfig, Reconstructor

    off = reconstructor  # the default: independent points
    reconstructor = Reconstructor(off.model, config=PipelineConfig(correlated_noise=True), detector=off.detector)
    model = reconstructor._error_model()
    assert model is not None and model.has_covariance
    face = reconstructor.detector.detect(astronaut)[0]
    h, w = astronaut.shape[:2]
    base = reconstructor.landmark_weights.copy()
    first = reconstructor.fast_fitter.fit(face.points, (h, w), base, reconstructor.config.landmark)
    points, weights = reconstructor._apply_error_model(model, face.points, base, first)
    fit_weights, noise = reconstructor._correlated_noise(model, face.points, base, weights, first)
    assert isinstance(noise, CorrelatedNoise) and noise.diagonal.shape == (478, 2)
    # the base weights on the points the error model keeps: the per-point noise is in the covariance
    assert ((fit_weights > 0) == (weights > 0)).all() and set(np.unique(fit_weights)) <= set(np.unique(base))
    # a whole contour sliding is one direction of the noise: its std there exceeds the per-point one
    d, u = noise.diagonal.ravel(), noise.factors.reshape(956, -1)
    assert (u ** 2).sum() > 0.3 * d.sum()
    fit = reconstructor.fast_fitter.fit(points, (h, w), fit_weights, reconstructor.config.landmark, init=first,
                                        noise=noise)
    assert fit.rms_px < 2.5
    rec = reconstructor.reconstruct(astronaut, mode="fast")[0]
    assert rec.landmark_error_px() < 2.5 and rec.quality.to_dict() == {}
    # switched off, the pass weights independent points
    kept, none = off._correlated_noise(model, face.points, base, weights, first)
    assert none is None and np.array_equal(kept, weights)


def test_a_face_only_the_mesh_fallback_found_is_flagged_weak(reconstructor, astronaut, fast_result):
    import dataclasses

    class FallbackOnly:  # the real detector's points, as if no face detector had agreed
        scheme = reconstructor.detector.scheme
        error_model = getattr(reconstructor.detector, "error_model", None)

        def detect(self, image):
            return [dataclasses.replace(fast_result.landmarks, found_by="rotated_90+mesh_fallback")]

    real = reconstructor.detector
    reconstructor.detector = FallbackOnly()
    try:
        weak = reconstructor.reconstruct(astronaut, mode="fast")[0]
    finally:
        reconstructor.detector = real
    assert weak.quality.to_dict()["weak_detection"] == "rotated_90+mesh_fallback"
    assert "weak_detection" not in fast_result.quality.to_dict()
    assert weak.to_dict()["quality"]["weak_detection"] == "rotated_90+mesh_fallback"


def test_the_first_pass_is_short_only_when_an_error_model_pass_follows(reconstructor):
    from facerecon.pipeline import Reconstructor

    lm = reconstructor.config.landmark
    short = reconstructor.first_pass_config(error_model=True)
    assert (short.num_identity, short.iterations, short.sliding_updates) == (
        min(20, lm.num_identity), min(4, lm.iterations), min(1, lm.sliding_updates))
    assert short.terms == lm.terms and short.noise == lm.noise
    assert reconstructor.first_pass_config(error_model=False) is lm  # the only pass is the whole fit
    few = dataclasses.replace(reconstructor.config, landmark=dataclasses.replace(lm, num_identity=8, iterations=3))
    rec = Reconstructor(reconstructor.model, config=few, detector=reconstructor.detector)
    capped = rec.first_pass_config(error_model=True)
    assert (capped.num_identity, capped.iterations) == (8, 3)  # never more than the landmark config's
    full = dataclasses.replace(reconstructor.config, first_pass_identity=None, first_pass_iterations=None,
                               first_pass_sliding_updates=None)
    assert Reconstructor(reconstructor.model, config=full, detector=reconstructor.detector).first_pass_config(True) is lm


def test_the_silhouette_term_runs_on_turned_faces_only(reconstructor, astronaut, fast_result):
    from facerecon.fitting.silhouette import MAP

    cfg = reconstructor.config
    assert cfg.photometric.terms["silhouette"] > 0 and cfg.silhouette_min_yaw_deg > 0
    face = fast_result.landmarks
    assert reconstructor.silhouette_extras(astronaut, face, cfg.silhouette_min_yaw_deg - 1) == {}
    targets = reconstructor.silhouette_extras(astronaut, face, -(cfg.silhouette_min_yaw_deg + 1))["image_maps"][MAP]
    assert targets.shape == astronaut.shape[:2] + (2,)
    inside, outside = targets[..., 0], targets[..., 1]
    assert inside.sum() > 0 and 0.2 < outside.mean() < 0.9  # the person's outline, the background around it


def test_the_outline_term_runs_on_turned_faces_only_and_shares_the_segmentation(reconstructor, astronaut,
                                                                                 fast_result):
    from facerecon.fitting.outline import EXTRA, OutlineTargets
    from facerecon.pipeline import Reconstructor

    cfg = reconstructor.config
    assert cfg.landmark.terms["outline"] > 0 and cfg.outline_min_yaw_deg > 0
    face = fast_result.landmarks
    assert reconstructor.outline_extras(astronaut, face, cfg.outline_min_yaw_deg - 1) == {}
    reconstructor._person = None
    targets = reconstructor.outline_extras(astronaut, face, cfg.outline_min_yaw_deg + 1)[EXTRA]
    assert isinstance(targets, OutlineTargets) and len(targets.edge_points) > 0
    # the edges lie where the face meets the background: on person pixels next to background
    person = reconstructor.person(astronaut)
    r, c = targets.edge_points[:, 1].astype(int), targets.edge_points[:, 0].astype(int)
    assert (person[r, c] >= 0.5).all()
    assert reconstructor.person(astronaut) is person  # one segmentation per reconstruct call
    off = dataclasses.replace(cfg, landmark=dataclasses.replace(cfg.landmark, terms={**cfg.landmark.terms, "outline": 0.0}))
    assert Reconstructor(reconstructor.model, config=off, detector=reconstructor.detector).outline_extras(
        astronaut, face, 45.0) == {}


def test_faces_already_detected_are_fitted_without_detecting_again(reconstructor, astronaut, fast_result):
    class Refuses:
        scheme = reconstructor.detector.scheme
        error_model = getattr(reconstructor.detector, "error_model", None)

        def detect(self, image):
            raise AssertionError("the detector ran although the faces were given")

    real = reconstructor.detector
    reconstructor.detector = Refuses()
    try:
        again = reconstructor.reconstruct(astronaut, mode="fast", faces=[fast_result.landmarks])[0]
    finally:
        reconstructor.detector = real
    np.testing.assert_array_equal(again.state.params.identity, fast_result.state.params.identity)
    np.testing.assert_array_equal(again.state.params.expression, fast_result.state.params.expression)
    with pytest.raises(NoFaceError):
        reconstructor.reconstruct(astronaut, mode="fast", faces=[])


def test_the_identity_prior_of_the_error_model_pass_follows_the_yaw(reconstructor, fast_result):
    from facerecon.pipeline import PipelineConfig, identity_prior_scale

    cfg = PipelineConfig(identity_prior_by_yaw=((20.0, 0.25), (35.0, 1.0)))
    assert [identity_prior_scale(cfg, y) for y in (0.0, -20.0, 27.5, -35.0, 80.0)] == [0.25, 0.25, 0.625, 1.0, 1.0]
    assert identity_prior_scale(PipelineConfig(identity_prior_by_yaw=()), 10.0) == 1.0
    base = reconstructor.config.landmark.terms["identity_prior"]
    yaw = float(fast_result.state.params.pose_deg()[0, 0])
    got = reconstructor.second_pass_config(fast_result).terms["identity_prior"]
    assert got == pytest.approx(base * identity_prior_scale(reconstructor.config, yaw))
    # the other terms are the landmark config's
    others = {k: v for k, v in reconstructor.second_pass_config(fast_result).terms.items() if k != "identity_prior"}
    assert others == {k: v for k, v in reconstructor.config.landmark.terms.items() if k != "identity_prior"}
