"""Several photos of one person, end to end on synthetic renders (benchmarks/bench_multiview.py's people)."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from facerecon.errors import NoFaceError, UsageError
from facerecon.evaluation.calibration import score_vertices
from facerecon.io import read_obj_mesh, validate_glb

REPO = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_multiview", REPO / "benchmarks" / "bench_multiview.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def person(ict_dir):
    from facerecon.person import PersonReconstructor

    with PersonReconstructor() as p:
        yield p


@pytest.fixture(scope="module")
def scene(person):
    return _bench().PersonScene(person.reconstructor.model, texture_size=256)


@pytest.fixture(scope="module")
def alice(scene):
    """Person 2 of the benchmark (held-out image formation) seen at yaw 0, +35, -35 (each view its
    own expression, light and camera), 256 px."""
    return _bench().render_person(scene, 2, yaws=(0.0, 35.0, -35.0), image_size=256)


@pytest.fixture(scope="module")
def alice_fit(person, alice):
    _, views = alice
    return person.reconstruct([v.image for v in views], names=["front", "left", "right"])


def test_shared_identity_is_better_than_the_single_photo_fits(person, alice, alice_fit):
    neutral, views = alice
    view = person.reconstructor.view
    res = alice_fit
    assert res.state.params.identity.shape[0] == 1 and res.state.num_images == 3
    assert [r.state.num_images for r in res.photos] == [1, 1, 1]
    for r in res.photos:
        np.testing.assert_array_equal(r.state.params.identity, res.state.params.identity)
    shared = np.mean(score_vertices(neutral, view, res.neutral_vertices()).distances)
    singles = [np.mean(score_vertices(neutral, view, person.reconstruct([v.image]).neutral_vertices()).distances)
               for v in views]
    assert shared < np.mean(singles)
    d = res.to_dict()
    assert [p["name"] for p in d["photos"]] == ["front", "left", "right"]
    assert all(p["own_identity_distance_mm"] > 0 and 0 < p["weight"] <= 1 for p in d["photos"])


def test_order_does_not_matter(person, alice, alice_fit):
    _, views = alice
    order = [2, 0, 1]
    again = person.reconstruct([views[i].image for i in order], names=["right", "front", "left"])
    np.testing.assert_allclose(again.identity, alice_fit.identity, atol=1e-6)
    np.testing.assert_allclose(again.weights, alice_fit.weights[order], atol=1e-9)
    np.testing.assert_allclose(again.own_distance_mm, alice_fit.own_distance_mm[order], atol=1e-5)


def test_one_photo_is_the_single_photo_pipeline(person, alice):
    _, views = alice
    res = person.reconstruct([views[1].image])
    single = person.reconstructor.reconstruct(views[1].image)[0]
    np.testing.assert_array_equal(res.identity, single.state.params.identity[0])
    np.testing.assert_array_equal(res.photos[0].state.params.expression, single.state.params.expression)
    np.testing.assert_array_equal(res.photos[0].state.camera.focal, single.state.camera.focal)


def test_each_photo_is_de_biased_and_weighted_as_the_single_photo_pipeline(person, alice, alice_fit):
    """The joint fit starts from, and fits, the points the one-photo pipeline fits: the error
    model's de-biased points with its per-point weights (not the raw detections)."""
    _, views = alice
    rec = person.reconstructor
    assert rec._error_model() is not None
    for k, v in enumerate(views):
        single = rec.reconstruct(v.image)[0]
        prepared = person._prepare(v.image, "v", None, keep_image=False)
        np.testing.assert_allclose(prepared.single.state.params.identity, single.state.params.identity, atol=1e-9)
        np.testing.assert_allclose(prepared.weights, single.landmark_weights, atol=1e-12)
        np.testing.assert_allclose(alice_fit.photos[k].landmark_weights, single.landmark_weights, atol=1e-12)
        assert not np.allclose(prepared.weights, rec.landmark_weights)
        assert not np.allclose(prepared.points, prepared.face.points)
        # a turned photo (yaw +-35) brings its outline targets to the joint fit, the frontal one none
        assert ("outline" in prepared.outline) == (k > 0)


def test_the_joint_fit_uses_the_turned_photos_outlines(person, alice, alice_fit):
    import dataclasses

    from facerecon.person import PersonReconstructor

    _, views = alice
    config = dataclasses.replace(person.config, outline=False)
    without = PersonReconstructor(person.reconstructor, config=config).reconstruct(
        [v.image for v in views], names=["front", "left", "right"])
    assert not np.allclose(without.identity, alice_fit.identity, atol=1e-3)


def test_the_shape_test_names_the_odd_photo(person):
    """The shape measure's verdict (one-photo identities vs the median of the others', mm RMS):
    the photo beyond the threshold is named, two photos name the pair, and one person's photos
    (alice_fit, at the default threshold) pass. In fast mode it catches gross disagreement only
    (see PersonConfig.max_disagreement_mm); the embedder test below is the sharp one."""
    from facerecon.person import DifferentPeopleError

    limit = person.config.max_disagreement_mm
    with pytest.raises(DifferentPeopleError, match="stranger") as info:
        person._check_same_person(np.array([3.0, 4.0, 2.0, limit + 2]), None, ["a", "b", "c", "stranger"])
    assert info.value.odd == ["stranger"] and info.value.exit_code == 6
    with pytest.raises(DifferentPeopleError, match="a and b look like different people"):
        person._check_same_person(np.array([limit + 1, limit + 1]), None, ["a", "b"])
    person._check_same_person(np.array([limit - 1, 1.0, 2.0]), None, ["a", "b", "c"])


def test_the_shape_test_flags_a_turned_photo_instead_of_judging_it(person, alice, monkeypatch):
    """A photo whose one-photo fit reads |yaw| >= shape_test_max_yaw_deg is not judged by the
    shape (its own identity is too uncertain): beyond the threshold it is flagged, the set is fitted.
    A frontal photo as far off still names it."""
    import dataclasses

    from facerecon.person import DifferentPeopleError, PersonReconstructor

    _, views = alice
    # alice's side views read about +-35 deg: a limit of 20 deg leaves only the frontal one judged
    config = dataclasses.replace(person.config, shape_test_max_yaw_deg=20.0)
    strict = PersonReconstructor(person.reconstructor, config=config)
    limit = config.max_disagreement_mm
    far = {"index": 1}

    def disagreement(joint, photos):
        odd = np.ones(len(photos))
        odd[far["index"]] = limit + 2
        return np.ones(len(photos)), odd
    monkeypatch.setattr(strict, "_disagreement", disagreement)
    images, names = [v.image for v in views], ["front", "left", "right"]
    res = strict.reconstruct(images, names=names)
    assert res.flags[1]["shape_disagreement_mm"] == round(limit + 2, 2)
    assert "shape_disagreement_mm" not in res.flags[0] and "shape_disagreement_mm" not in res.flags[2]
    assert res.to_dict()["photos"][1]["flags"]["shape_disagreement_mm"] == round(limit + 2, 2)
    far["index"] = 0
    with pytest.raises(DifferentPeopleError, match="front"):
        strict.reconstruct(images, names=names)


def test_the_neutral_faces_compared_are_the_models_own(person):
    """The shape test's neutral faces come from a cached region basis (linear in the identity):
    they are the view's own vertices for identities of any length, mean face included."""
    import torch

    view = person.reconstructor.view
    rng = np.random.default_rng(5)
    ids = [rng.normal(size=view.num_identity), rng.normal(size=12), np.zeros(view.num_identity)]
    got = person._neutral_region(ids)
    rows = np.zeros((3, view.num_identity))
    for row, a in zip(rows, ids):
        row[: len(a)] = a
    with torch.no_grad():
        want = view.vertices(torch.as_tensor(rows, dtype=view.dtype), None).double().numpy()
    region = person._region if person._region is not None else slice(None)
    np.testing.assert_allclose(got, want[:, region], atol=1e-3)  # mm; float32 model
    assert np.abs(got[0] - got[2]).max() > 1.0  # the identities differ where compared


def test_a_face_embedder_names_the_odd_photo(person, alice):
    from facerecon.person import DifferentPeopleError, PersonReconstructor

    _, views = alice

    class ByBrightness:  # stands in for dlib: photo 2 (made dark below) embeds elsewhere
        def embed(self, image, box):
            return np.array([1.0, 0.0]) if image.mean() > 0.15 else np.array([0.0, 1.0])

    dark = views[2].image * 0.2
    judge = PersonReconstructor(person.reconstructor, embedder=ByBrightness())
    with pytest.raises(DifferentPeopleError, match="dark") as info:
        judge.reconstruct([views[0].image, views[1].image, dark], names=["front", "left", "dark"])
    assert info.value.odd == ["dark"]
    ok = judge.reconstruct([v.image for v in views], names=["a", "b", "c"])
    assert ok.to_dict()["photos"][0]["identity_cosine_to_others"] == pytest.approx(1.0)
    assert ok.to_dict()["different_people_test"].startswith("face embeddings")
    plain = person.reconstruct([v.image for v in views], names=["a", "b", "c"])
    assert "shape" in plain.to_dict()["different_people_test"] and "facerecon[dlib]" in plain.to_dict()["different_people_test"]


def test_bad_photo_sets(person, alice):
    _, views = alice
    blank = np.full((200, 300, 3), 0.5, np.float32)
    gray = views[1].image.mean(2)  # (H, W): one grayscale photo among colour ones
    big = np.repeat(np.repeat(views[2].image, 3, 0), 3, 1)  # 3x the resolution
    res = person.reconstruct([views[0].image, views[0].image.copy(), gray, big, blank],
                             names=["a", "a_copy", "gray", "big", "blank"])
    assert "blank" in res.skipped and res.names == ["a", "a_copy", "gray", "big"]
    assert res.flags[0]["duplicate_of"] == ["a_copy"] and res.flags[1]["duplicate_of"] == ["a"]
    assert res.weights[0] <= 0.5 and res.weights[1] <= 0.5 and res.weights[0] == res.weights[1]
    assert res.photos[3].state.camera.image_size == big.shape[:2]
    assert res.state.camera.image_size == (big.shape[0], big.shape[1])
    assert np.isfinite(res.identity).all()
    with pytest.raises(NoFaceError, match="none of the 2 photos"):
        person.reconstruct([blank, blank])
    missing = person.reconstruct([views[0].image, views[1].image, "/nonexistent/photo.jpg"])
    assert "photo" in missing.skipped and len(missing.photos) == 2
    with pytest.raises(UsageError, match="at least one"):
        person.reconstruct([])
    with pytest.raises(UsageError, match="mode"):
        person.reconstruct([blank], mode="slow")


def test_a_photo_with_two_faces_uses_the_largest_and_is_flagged(person, alice):
    from skimage.transform import rescale

    _, views = alice
    small = rescale(views[2].image, 0.6, channel_axis=2, anti_aliasing=True).astype(np.float32)  # the same face, smaller
    pair = np.concatenate([views[2].image, np.zeros((256, small.shape[1], 3), np.float32)], 1)
    pair[40:40 + small.shape[0], 256:] = small
    res = person.reconstruct([views[0].image, pair], names=["front", "pair"])
    if res.photos[1].faces_detected < 2:
        pytest.skip("the detector found one face in the composed pair")  # detector-dependent
    assert res.flags[1]["multiple_faces"] >= 2
    assert res.photos[1].landmarks.box[0] < 256  # the larger (left) face was used


def test_save_writes_the_person_and_each_photo(alice_fit, tmp_path):
    paths = alice_fit.save(tmp_path)
    person = tmp_path / "person"
    for name in ("mesh.obj", "mesh.ply", "mesh.glb", "person.json"):
        assert (person / name).is_file()
    assert validate_glb(person / "mesh.glb") == []
    info = json.loads((person / "person.json").read_text())
    assert [p["name"] for p in info["photos"]] == ["front", "left", "right"]
    for name in ("front", "left", "right"):
        assert (tmp_path / name / "params.json").is_file()
    vertices, _ = read_obj_mesh(person / "mesh.obj")
    neutral = alice_fit.neutral_mesh()
    assert len(vertices) > 0 and neutral.morph_weights is not None and not any(neutral.morph_weights)
    assert "person/person.json" not in paths and paths["person"] == person / "person.json"


def test_cli_same_person_writes_the_person_and_reports_a_photo_without_face(alice, tmp_path, capsys):
    from PIL import Image

    from facerecon.cli import main

    _, views = alice
    files = []
    for name, image in (("front", views[0].image), ("left", views[1].image), ("empty", np.full((64, 64, 3), 0.5))):
        files.append(str(tmp_path / f"{name}.png"))
        Image.fromarray((np.asarray(image) * 255).round().astype(np.uint8)).save(files[-1])
    out = tmp_path / "out"
    code = main(["reconstruct", *files, "--same-person", "-o", str(out), "--offline"])
    assert code == 3  # the photo without a face; the others are written
    captured = capsys.readouterr()
    assert "empty" in captured.err
    try:  # without the dlib extra the output says the different-people check is the weak one
        import dlib  # noqa: F401
    except ImportError:
        assert "same-person check: face shapes only" in captured.out
    info = json.loads((out / "person" / "person.json").read_text())
    assert [p["name"] for p in info["photos"]] == ["front", "left"] and "empty" in info["skipped"]
    assert (out / "front" / "params.json").is_file() and (out / "left" / "mesh.glb").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_full_mode_keeps_one_identity_and_each_photos_colours(alice):
    from facerecon.fitting import PhotometricFitConfig
    from facerecon.person import PersonReconstructor
    from facerecon.pipeline import PipelineConfig, Reconstructor

    _, views = alice
    quick = PipelineConfig(photometric=PhotometricFitConfig(levels=((64, 4),)))
    with Reconstructor(config=quick) as rec:
        res = PersonReconstructor(rec).reconstruct([v.image for v in views[:2]], mode="full", names=["a", "b"])
        fast = PersonReconstructor(rec).reconstruct([v.image for v in views[:2]], names=["a", "b"])
    assert res.mode == "full" and res.state.params.identity.shape[0] == 1
    assert res.state.appearance.albedo.shape[0] == 2 and res.state.appearance.sh.shape == (2, 9, 3)
    for r in res.photos:
        np.testing.assert_array_equal(r.state.params.identity, res.state.params.identity)
        assert r.state.appearance.albedo is not None and r.landmark_error_px() < 5.0
    assert not np.allclose(res.identity, fast.identity)  # the photometric step moved the shared identity


def test_a_photo_whose_photometric_fit_drifts_gives_the_shared_identity_no_step(alice):
    import dataclasses

    from facerecon.fitting import PhotometricFitConfig
    from facerecon.fitting.result import FitResult
    from facerecon.person import PersonReconstructor
    from facerecon.pipeline import PipelineConfig, Reconstructor

    _, views = alice
    quick = PipelineConfig(photometric=PhotometricFitConfig(levels=((64, 4),)))
    with Reconstructor(config=quick) as rec:
        real_fit, calls = rec.full_fitter.fit, []

        def second_photo_drifts(*args, **kwargs):
            out = real_fit(*args, **kwargs)
            calls.append(out.state.params.identity[0].copy())
            if len(calls) == 2:  # photo "b": its fit ends far from its points
                d = out.diagnostics
                out = FitResult(out.state, out.correspondence,
                                dataclasses.replace(d, residual_px=d.residual_px * 20 + 5), out.corrective)
            return out

        rec.full_fitter.fit = second_photo_drifts
        res = PersonReconstructor(rec).reconstruct([v.image for v in views[:2]], mode="full", names=["a", "b"])
    assert len(calls) == 2
    assert "photometric_drift_px" in res.flags[1] and "photometric_drift_px" not in res.flags[0]
    # the shared identity took photo a's step alone
    np.testing.assert_allclose(res.identity, calls[0], atol=1e-6)
    assert res.photos[1].landmark_error_px() < 5.0  # b keeps its joint landmark fit's pose and expression


def test_a_photo_whose_landmarks_fit_badly_is_down_weighted_and_flagged(person, alice, alice_fit):
    import dataclasses

    from facerecon.person import PersonReconstructor

    _, views = alice

    class Jittery:  # the detector, with landmarks scattered on photos marked by a white corner pixel
        def __init__(self, inner):
            self.inner = inner

        def detect(self, image):
            faces = self.inner.detect(image)
            if image[0, 0, 0] == 1.0 and faces:
                rng = np.random.default_rng(0)
                size = np.linalg.norm(np.ptp(faces[0].points, axis=0))
                faces[0] = dataclasses.replace(faces[0], points=faces[0].points
                                               + rng.normal(0, 0.08 * size, faces[0].points.shape))
            return faces

    marked = views[2].image.copy()
    marked[0, 0] = 1.0
    rec = person.reconstructor
    saved = rec.detector
    rec.detector = Jittery(saved)
    try:
        res = PersonReconstructor(rec).reconstruct([views[0].image, views[1].image, marked],
                                                   names=["front", "left", "jittery"], check_same_person=False)
    finally:
        rec.detector = saved
    assert res.weights[2] < person.config.flag_weight_below < min(res.weights[0], res.weights[1])
    assert "down_weighted" in res.flags[2] and "down_weighted" not in res.flags[0]


def test_cli_same_person_interrupted_while_saving_leaves_no_partial_folder(alice, tmp_path, capsys, monkeypatch):
    import signal

    from PIL import Image

    from facerecon.cli import main
    from facerecon.commands.reconstruct import Interrupted
    from facerecon.person import PersonReconstruction

    _, views = alice
    files = []
    for name, image in (("front", views[0].image), ("left", views[1].image)):
        files.append(str(tmp_path / f"{name}.png"))
        Image.fromarray((np.asarray(image) * 255).round().astype(np.uint8)).save(files[-1])
    real_save = PersonReconstruction.save

    def save_then_sigterm(self, folder, **kw):  # SIGTERM arrives after some files are written
        real_save(self, folder, **kw)
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(PersonReconstruction, "save", save_then_sigterm)
    out = tmp_path / "out"
    assert main(["reconstruct", *files, "--same-person", "-o", str(out), "--offline"]) == 143
    assert "interrupted by SIGTERM" in capsys.readouterr().err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
