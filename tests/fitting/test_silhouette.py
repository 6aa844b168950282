import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.fitting import silhouette_loss, silhouette_targets
from facerecon.fitting.terms import TERMS, LossInputs
from facerecon.render import PinholeCamera, render_mesh

SIZE = 96


def _camera(translation_x=0.0, yaw_deg=70.0):
    cam = PinholeCamera.looking_at_origin(600.0, (SIZE, SIZE), fov_deg=30.0, dtype=torch.float64)
    cam.rotation = torch.tensor([[0.0, np.radians(yaw_deg), 0.0]], dtype=torch.float64)
    cam.translation = cam.translation + torch.tensor([[translation_x, 0.0, 0.0]], dtype=torch.float64)
    return cam


@pytest.fixture(scope="module")
def face(ict_model):
    view = ict_model.view("face")
    return view, view.mean.double()[None]


def test_targets_mark_background_and_the_outline_band_only():
    person = np.zeros((40, 40), np.float32)
    person[:, :20] = 1.0  # person on the left half
    pts = np.array([[5.0, 5.0], [25.0, 5.0], [25.0, 35.0], [5.0, 35.0]])  # hull crosses into the background
    t = silhouette_targets(person, pts, band_fraction=0.1)
    inside, outside = t[..., 0], t[..., 1]
    assert t.shape == (40, 40, 2) and t.dtype == np.float32
    assert (outside[:, 20:] == 1).all() and (outside[:, :20] == 0).all()
    assert inside[:, 20:].sum() == 0  # never on background
    assert inside[20, 17:20].all() and not inside[20, 6:12].any()  # the hull's part near the background only
    with pytest.raises(UsageError):
        silhouette_targets(person, pts[:2])
    with pytest.raises(UsageError):
        silhouette_targets(np.full((4, 4), np.nan), pts)


def test_loss_counts_coverage_over_background_and_missed_outline():
    alpha = torch.zeros(1, 4, 4)
    alpha[0, :, :2] = 1.0
    outside = torch.zeros(1, 4, 4)
    outside[0, :, 1:] = 1.0
    inside = torch.zeros(1, 4, 4)
    inside[0, 0, 0] = 1.0
    inside[0, 0, 3] = 0.0
    assert float(silhouette_loss(alpha, inside, outside)) == pytest.approx(4 / 4)  # column 1 over background
    inside[0, 1, 0] = 0.0
    alpha[0, 0, 0] = 0.0
    assert float(silhouette_loss(alpha, inside, outside)) == pytest.approx(5 / 4)
    with pytest.raises(UsageError):
        silhouette_loss(alpha, inside[..., :2], outside)


def test_gradient_moves_a_profile_outline_toward_the_target_mask(face):
    view, verts = face
    tri = view.triangles
    with torch.no_grad():
        truth = render_mesh(verts, tri, _camera(translation_x=15.0), antialias=False).alpha[0].numpy()
    person = truth.astype(np.float32)  # here the face is the whole person: all its outline meets background
    ys, xs = np.nonzero(truth > 0.5)
    pts = np.stack([xs + 0.5, ys + 0.5], 1).astype(np.float64)
    target = torch.as_tensor(silhouette_targets(person, pts, band_fraction=0.05))[None]

    shift = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([shift], lr=0.5)

    def iou():
        with torch.no_grad():
            a = render_mesh(verts, tri, _cam(shift), antialias=False).alpha[0].numpy() > 0.5
        b = truth > 0.5
        return (a & b).sum() / (a | b).sum()

    def _cam(s):
        cam = _camera()
        cam.translation = cam.translation + s
        return cam

    before = iou()
    for _ in range(40):
        opt.zero_grad()
        cam = _cam(shift)
        x = LossInputs(identity=None, expression=None, vertices=verts, camera=cam, landmarks=None,
                       landmark_target=None, landmark_weights=None, sigma=1.0, robust_scale=None,
                       expression_std=None, render_triangles=tri, extras={"crops": {"silhouette": target}})
        loss = TERMS["silhouette"].loss(x)
        loss.backward()
        opt.step()
    after = iou()
    assert before < 0.8
    assert after > before + 0.1
    assert float(shift.detach()[0, 0]) > 5.0  # toward the target's +15 mm


def test_the_term_is_silent_without_targets(face):
    view, verts = face
    x = LossInputs(identity=None, expression=None, vertices=verts, camera=_camera(), landmarks=None,
                   landmark_target=None, landmark_weights=None, sigma=1.0, robust_scale=None,
                   expression_std=None, render_triangles=view.triangles, extras={})
    assert TERMS["silhouette"].loss(x) is None
