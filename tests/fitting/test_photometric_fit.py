"""The full (photometric) fit: the shading term carries shape information, and a synthetic round trip."""
import numpy as np
import pytest
import torch

from facerecon.fitting.losses import photometric_loss
from facerecon.render import PinholeCamera, render_mesh
from facerecon.render.shading import SHLight


def _camera(size=160):
    return PinholeCamera(torch.tensor([[0.1, 0.35, 0.0]]), torch.tensor([[0.0, 10.0, -650.0]]),
                         torch.tensor([float(size) * 2.2]), torch.tensor([[size / 2, size / 2]]), (size, size))


def test_photometric_gradient_improves_a_shading_only_perturbation(ict_head):
    """Render a known face; perturb its identity; the photometric gradient points back to the truth
    and a few steps on the photometric loss alone reduce the shape error."""
    gen = torch.Generator().manual_seed(0)
    head = ict_head
    face_tris = head.triangles[torch.isin(head.triangles, head.regions["face"]).all(1)]
    alpha_true = torch.randn(1, 40, generator=gen)
    albedo = torch.full((1, head.num_vertices, 3), 0.6)
    sh = SHLight.ambient_directional(1, ambient=0.4, intensity=0.7, direction=(0.8, 0.3, 0.6)).coefficients
    cam = _camera()
    with torch.no_grad():
        target = render_mesh(head.vertices(alpha_true), face_tris, cam, colors=albedo, sh=sh, antialias=False)
    mask = (target.alpha > 0.5).float()
    delta = torch.randn(1, 40, generator=gen) * 0.6
    alpha = (alpha_true + delta).clone().requires_grad_(True)

    def loss_at(a):
        out = render_mesh(head.vertices(a), face_tris, cam, colors=albedo, sh=sh, antialias=False)
        return photometric_loss(out.image, target.image, mask * out.alpha.detach())

    loss = loss_at(alpha)
    loss.backward()
    # descending the gradient moves alpha toward the truth
    assert float((-alpha.grad * (alpha_true - alpha.detach())).sum()) > 0
    opt = torch.optim.Adam([alpha], lr=0.05)
    face = head.regions["narrow_face"]
    err0 = float((head.vertices(alpha.detach()) - head.vertices(alpha_true))[0, face].norm(dim=-1).mean())
    for _ in range(25):
        opt.zero_grad()
        loss_at(alpha).backward()
        opt.step()
    err1 = float((head.vertices(alpha.detach()) - head.vertices(alpha_true))[0, face].norm(dim=-1).mean())
    assert err1 < 0.8 * err0


@pytest.fixture(scope="module")
def synthetic_face(ict_model):
    from facerecon.evaluation.synthetic import generate_synthetic_set

    return generate_synthetic_set(ict_model, 1, seed=11, image_size=256, yaw_range=(-20.0, 20.0))[0]


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_synthetic_round_trip(ict_model, synthetic_face, mode):
    """Render a known face, reconstruct it from its ground-truth landmark positions, and score by NoW:
    below the mean face's error (thresholds: mean < 1.5 mm and < 0.85 x the mean face's)."""
    from facerecon.evaluation.calibration import nothing_baseline, score_vertices
    from facerecon.harness.synthetic_eval import GroundTruthDetector
    from facerecon.pipeline import Reconstructor

    det = GroundTruthDetector(ict_model)
    det.use(synthetic_face)
    rec = Reconstructor(ict_model, detector=det).reconstruct(synthetic_face.image, mode=mode)[0]
    err = score_vertices(synthetic_face, rec.view, rec.vertices(full=False)).distances.mean()
    nothing = nothing_baseline(synthetic_face, rec.view).distances.mean()
    assert err < 1.5 and err < 0.85 * nothing, (err, nothing)
    assert rec.landmark_error_px() < 3.0
    yaw_fit = rec.pose_deg[0]
    assert np.isfinite(yaw_fit)


def test_a_fit_has_drifted_when_its_landmark_rms_exceeds_the_reference_times_factor_plus_margin():
    from facerecon.fitting.correspondence import VertexCorrespondence
    from facerecon.fitting.photometric_fit import drifted_from_landmarks
    from facerecon.fitting.result import FitDiagnostics, FitResult

    def fit(rms):
        return FitResult(None, VertexCorrespondence(np.zeros((1, 3), int), np.ones((1, 3)) / 3, np.zeros(1, bool)),
                         FitDiagnostics(np.full((1, 4), float(rms))))
    assert not drifted_from_landmarks(fit(3.49), 1.0, 3.0, 0.5)
    assert drifted_from_landmarks(fit(3.51), 1.0, 3.0, 0.5)
