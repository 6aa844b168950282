"""fitting.multi_image_photometric: per-photo extras reach each photo's full fit; bad extras refused.
(The joint full fit's accuracy is tested end to end in tests/test_person.py.)"""
import dataclasses

import numpy as np
import pytest

from facerecon.errors import UsageError
from facerecon.fitting.multi_image_fit import fit_multi_image
from facerecon.fitting.multi_image_photometric import fit_multi_image_photometric
from facerecon.fitting.state import Appearance

from .test_multi_image_fit import _views, sparse_fitter


class _RecordingFullFitter:
    """Stands in for PhotometricFitter: returns its start with an appearance, records the extras."""

    def __init__(self, num_vertices: int) -> None:
        self.extras, self.num_vertices = [], num_vertices

    def fit(self, image, points, weights, mask, start, eye_pairs, lip_pairs, fix_focal=False, extras=None):
        self.extras.append(extras)
        appearance = Appearance(np.full((1, self.num_vertices, 3), 0.5), np.zeros((1, 9, 3)))
        return dataclasses.replace(start, state=start.state.to_numpy().replace(albedo=appearance.albedo,
                                                                               sh=appearance.sh))


def test_each_photo_gets_its_own_extras(ict_head):
    fitter, ids = sparse_fitter(ict_head)
    _, points, sizes = _views(ict_head, ids, seed=3)
    joint = fit_multi_image(fitter, points, sizes, init=[fitter.fit(p, s) for p, s in zip(points, sizes)])
    full = _RecordingFullFitter(ict_head.num_vertices)
    images = [np.zeros(s + (3,)) for s in sizes]
    masks = [np.ones(s, bool) for s in sizes]
    extras = [{"image_maps": {"k": i}} for i in range(3)]
    out = fit_multi_image_photometric(full, fitter, joint, images, masks, points=points, extras=extras)
    assert full.extras == extras and out.state.num_images == 3
    full.extras.clear()
    fit_multi_image_photometric(full, fitter, joint, images, masks, points=points)
    assert full.extras == [None, None, None]
    with pytest.raises(UsageError, match="extras"):
        fit_multi_image_photometric(full, fitter, joint, images, masks, points=points, extras=extras[:2])
