"""MediaPipe detection on the astronaut photo and on images the tests make."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facerecon.errors import NoFaceError, UsageError
from facerecon.landmarks import FaceLandmarks, create_detector


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
