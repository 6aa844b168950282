"""The face skin mask for the photometric loss."""
from __future__ import annotations

import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.landmarks import FaceLandmarks, face_region_mask


def _pixel(mask, uv):
    # pixel containing the continuous point (u, v)
    return mask[int(np.floor(uv[1])), int(np.floor(uv[0]))]


@pytest.mark.parametrize("scheme", ["mediapipe478", "ibug68"])
def test_mask_keeps_skin_and_drops_eyes_and_mouth(astronaut_face, scheme):
    face = astronaut_face if scheme == "mediapipe478" else astronaut_face.to_ibug68()
    mask = face_region_mask(face, (512, 512))
    assert mask.shape == (512, 512) and mask.dtype == bool
    p = astronaut_face.points
    assert _pixel(mask, p[4])          # nose tip
    assert _pixel(mask, p[50])         # right cheek
    assert not _pixel(mask, p[468])    # right pupil
    assert not _pixel(mask, p[473])    # left pupil
    assert not _pixel(mask, (p[13] + p[14]) / 2)  # between the lips (the teeth, she smiles)
    assert not _pixel(mask, (20, 20)) and not _pixel(mask, (250, 450))  # background, neck
    x0, y0, x1, y1 = astronaut_face.box
    assert 0.4 < mask.sum() / ((x1 - x0) * (y1 - y0)) < 1.2


def test_mask_follows_the_pixel_centre_convention():
    # a square face outline covering pixel centres 10.5 .. 19.5 exactly
    pts = np.zeros((68, 2))
    pts[:17] = np.c_[np.linspace(10.2, 19.8, 17), np.full(17, 19.8)]
    pts[17:27] = np.c_[np.linspace(19.8, 10.2, 10), np.full(10, 10.2)]
    pts[27:] = (15.0, 15.0)  # eyes and mouth collapse to a point: no holes
    face = FaceLandmarks(np.array([10, 10, 20, 20.0]), 1.0, pts, None, "ibug68")
    mask = face_region_mask(face, (30, 40), hole_margin=0.0)
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 19, 10, 19)


def test_mask_outside_the_image_is_empty(astronaut_face):
    moved = FaceLandmarks(astronaut_face.box + 5000, 1.0, astronaut_face.points + 5000, None, "mediapipe478")
    assert not face_region_mask(moved, (100, 100)).any()
    with pytest.raises(UsageError):
        face_region_mask(astronaut_face, (0, 10))
