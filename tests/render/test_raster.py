import numpy as np
import pytest
import torch
from scipy.spatial import ConvexHull

from facerecon.errors import RenderError, UsageError
from facerecon.render.cameras import PinholeCamera, WeakPerspectiveCamera
from facerecon.render.primitives import box, icosphere
from facerecon.render.raster import Fragments, _barycentrics_torch, rasterize
from facerecon.geometry.rotation import euler_deg_to_matrix, matrix_to_axis_angle

from .helpers import assert_grad_matches, tetrahedron


def _camera(ypr, distance=400.0, size=(72, 96), fov=20.0, batch=1):
    cam = PinholeCamera.looking_at_origin(distance, size, fov_deg=fov, dtype=torch.float64, batch=batch)
    cam.rotation = matrix_to_axis_angle(euler_deg_to_matrix(torch.tensor(ypr, dtype=torch.float64)))
    return cam


def _pixel_centres(h, w):
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    return np.stack([jj, ii], -1)


def _hull_mask(points_2d, h, w, margin=1e-3):
    """(inside, ambiguous) masks of the pixel centres w.r.t. the convex hull of the points."""
    hull = ConvexHull(points_2d)
    p = _pixel_centres(h, w)
    dist = p @ hull.equations[:, :2].T + hull.equations[:, 2]  # <= 0 inside every facet
    far = dist.max(-1)
    return far < -margin, np.abs(far) <= margin


@pytest.mark.parametrize("ypr", [[30.0, 20.0, 0.0], [-50.0, -35.0, 15.0], [0.0, 0.0, 0.0]])
@pytest.mark.parametrize("cull", [False, True])
def test_cube_silhouette_is_its_exact_projection(ypr, cull):
    v, f = box((120.0, 90.0, 100.0), dtype=torch.float64)
    cam = _camera([ypr])
    screen = cam.to_screen(v[None])
    frags = rasterize(screen, f, cam.image_size, cull_backfaces=cull)
    inside, ambiguous = _hull_mask(screen[0, :, :2].numpy(), *cam.image_size)
    mask = frags.mask[0].numpy()
    assert inside.sum() > 500
    np.testing.assert_array_equal(mask[~ambiguous], inside[~ambiguous])


@pytest.mark.parametrize("ypr", [[10.0, 5.0, 0.0], [120.0, -60.0, 30.0]])
def test_closed_mesh_renders_without_holes(ypr):
    v, f = icosphere(3, radius=80.0, dtype=torch.float64)
    cam = _camera([ypr], size=(80, 80))
    screen = cam.to_screen(v[None])
    for cull in (False, True):
        frags = rasterize(screen, f, cam.image_size, cull_backfaces=cull)
        inside, ambiguous = _hull_mask(screen[0, :, :2].numpy(), 80, 80)
        np.testing.assert_array_equal(frags.mask[0].numpy()[~ambiguous], inside[~ambiguous])
        # every visible triangle faces the camera
        tid = frags.triangle_id[0][frags.mask[0]]
        g = screen[0][f[tid]]
        e1, e2 = g[:, 1, :2] - g[:, 0, :2], g[:, 2, :2] - g[:, 0, :2]
        area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        assert (area < 0).all()


def _ray_cast_depth(cam, vertices, triangles):
    """Nearest hit of the ray through each pixel centre (Moller-Trumbore), as depth; inf = miss."""
    h, w = cam.image_size
    cam_v = cam.transform(vertices[None])[0].numpy()
    f, (cx, cy) = cam.focal.item(), cam.principal[0].tolist()
    p = _pixel_centres(h, w).reshape(-1, 2)
    d = np.stack([(p[:, 0] - cx) / f, -(p[:, 1] - cy) / f, -np.ones(len(p))], -1)  # depth-1 direction
    a, b, c = (cam_v[triangles[:, k].numpy()] for k in range(3))
    e1, e2 = b - a, c - a
    pv = np.cross(d[:, None], e2[None])
    det = (e1[None] * pv).sum(-1)
    inv = 1.0 / np.where(np.abs(det) > 1e-12, det, np.nan)
    tv = -a[None]
    u = (tv * pv).sum(-1) * inv
    qv = np.cross(tv, e1[None])
    v = (d[:, None] * qv).sum(-1) * inv
    t = (e2[None] * qv).sum(-1) * inv
    hit = (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    t = np.where(hit, t, np.inf)
    return t.min(1).reshape(h, w), t.argmin(1).reshape(h, w)


def test_depth_matches_ray_casting():
    v, f = icosphere(2, radius=60.0, dtype=torch.float64)
    v = v * torch.tensor([1.0, 1.3, 0.8], dtype=torch.float64)
    cam = _camera([[25.0, -15.0, 10.0]], distance=300.0, size=(64, 80), fov=30.0)
    frags = rasterize(cam.to_screen(v[None]), f, cam.image_size, cull_backfaces=False)
    depth, tri = _ray_cast_depth(cam, v, f)
    hit = np.isfinite(depth)
    same = hit & (frags.triangle_id[0].numpy() == tri)
    assert same.sum() > 0.97 * hit.sum()
    assert np.abs(frags.depth[0].numpy()[same] - depth[same]).max() < 1e-4
    # where the two pick different triangles (ties on shared edges), the depths still agree
    both = hit & frags.mask[0].numpy()
    assert np.abs(frags.depth[0].numpy()[both] - depth[both]).max() < 1e-4


def test_barycentrics_are_perspective_correct():
    v, f = tetrahedron()
    cam = _camera([[20.0, 10.0, 5.0]], distance=120.0, size=(48, 48), fov=40.0)
    frags = rasterize(cam.to_screen(v[None]), f, cam.image_size)
    pix, tri, bary = frags.packed()
    cam_v = cam.transform(v[None])[0]
    p = (bary[:, :, None] * cam_v[f[tri]]).sum(1)  # interpolated camera-space point
    u = cam.principal[0, 0] + cam.focal * p[:, 0] / -p[:, 2]
    vv = cam.principal[0, 1] - cam.focal * p[:, 1] / -p[:, 2]
    torch.testing.assert_close(u, (pix % 48).double() + 0.5)
    torch.testing.assert_close(vv, torch.div(pix, 48, rounding_mode="floor").double() + 0.5)
    torch.testing.assert_close(frags.depth.reshape(-1)[pix], -p[:, 2])
    torch.testing.assert_close(bary.sum(1), torch.ones(len(pix), dtype=torch.float64))


@pytest.mark.parametrize("perspective", [True, False])
def test_barycentric_and_depth_gradients_match_finite_differences(perspective):
    v, f = tetrahedron()
    cam = _camera([[20.0, 10.0, 5.0]], distance=150.0, size=(24, 24), fov=40.0)
    screen = cam.to_screen(v[None]).detach().clone().requires_grad_(True)
    frags = rasterize(screen, f, cam.image_size, perspective=perspective)
    w = torch.randn(1, 24, 24, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def loss():
        fr = rasterize(screen, f, cam.image_size, perspective=perspective)
        assert torch.equal(fr.triangle_id, frags.triangle_id)
        return (fr.barycentric * w[..., :3]).sum() + (fr.depth * w[..., 3]).sum() * 0.01

    assert_grad_matches(loss, screen)


def test_cpu_path_matches_the_torch_twin():
    v, f = icosphere(2, radius=50.0, dtype=torch.float64)
    for perspective in (True, False):
        cam = _camera([[15.0, 25.0, 0.0]], distance=200.0, size=(40, 40), fov=40.0)
        screen = cam.to_screen(v[None]).detach().requires_grad_(True)
        frags = rasterize(screen, f, (40, 40), perspective=perspective)
        pix, tri, bary = frags.packed()
        b2, d2 = _barycentrics_torch(screen, f, pix, tri, (40, 40), perspective)
        torch.testing.assert_close(bary, b2)
        torch.testing.assert_close(frags.depth.reshape(-1)[pix], d2)
        w = torch.randn_like(b2)
        g1 = torch.autograd.grad((bary * w).sum() + frags.depth.sum(), screen)[0]
        g2 = torch.autograd.grad((b2 * w).sum() + d2.sum(), screen)[0]
        torch.testing.assert_close(g1, g2)


def test_torch_backend_gives_the_same_fragments():
    v, f = icosphere(2, radius=50.0)
    cam = PinholeCamera.looking_at_origin(200.0, (40, 48), fov_deg=40.0, batch=2)
    screen = cam.to_screen(torch.stack([v, v * 0.7]))
    a = rasterize(screen, f, (40, 48), cull_backfaces=True)
    b = rasterize(screen, f, (40, 48), cull_backfaces=True, backend="torch")
    assert torch.equal(a.triangle_id, b.triangle_id)
    torch.testing.assert_close(a.barycentric, b.barycentric)


def test_weak_perspective_and_batches():
    v, f = icosphere(2, radius=40.0)
    cam = WeakPerspectiveCamera(torch.zeros(3, 3), torch.tensor([0.5, 0.3, 0.2]), torch.full((3, 2), 32.0), (64, 64))
    frags = rasterize(cam.to_screen(v[None].expand(3, -1, -1)), f, (64, 64), perspective=False)
    area = frags.mask.sum((1, 2)).double()
    expected = torch.tensor([np.pi * (40 * s) ** 2 for s in (0.5, 0.3, 0.2)], dtype=torch.float64)
    torch.testing.assert_close(area, expected, rtol=0.05, atol=0)
    # the nearest surface is the front one: depth = -z' < 0 at the centre of the image
    assert frags.depth[0, 32, 32] < -39


def test_bad_and_degenerate_input():
    v, f = tetrahedron()
    cam = _camera([[0.0, 0.0, 0.0]], distance=150.0, size=(16, 16))
    screen = cam.to_screen(v[None])
    bad = screen.clone()
    bad[0, 1, 0] = float("nan")
    with pytest.raises(RenderError, match="NaN"):
        rasterize(bad, f, (16, 16))
    bad[0, 1, 0] = float("inf")
    with pytest.raises(RenderError):
        rasterize(bad, f, (16, 16))
    with pytest.raises(RenderError, match="indices"):
        rasterize(screen, f + 1, (16, 16))
    with pytest.raises(UsageError):
        rasterize(screen[0], f, (16, 16))
    with pytest.raises(UsageError):
        rasterize(screen, f.float(), (16, 16))
    empty = rasterize(screen, f[:0], (16, 16))
    assert isinstance(empty, Fragments) and not empty.mask.any() and empty.barycentric.shape == (1, 16, 16, 3)
    empty = rasterize(screen[:, :0], f[:0], (16, 16))
    assert not empty.mask.any()


def test_triangles_behind_or_through_the_camera_are_not_drawn():
    v, f = tetrahedron()
    cam = _camera([[0.0, 0.0, 0.0]], distance=10.0, size=(32, 32), fov=60.0)  # the apex (z=30) is behind
    frags = rasterize(cam.to_screen(v[None]), f, (32, 32))
    touching_apex = (f == 0).any(1)
    drawn = frags.triangle_id[frags.mask].unique()
    assert not touching_apex[drawn].any()
    cam = _camera([[0.0, 0.0, 0.0]], distance=-100.0, size=(32, 32))  # everything behind
    assert not rasterize(cam.to_screen(v[None]), f, (32, 32)).mask.any()
