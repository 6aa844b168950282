import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.render import PinholeCamera
from facerecon.render.bake import (
    TexelGrid,
    atlas_uv,
    bilinear,
    depth_map,
    divide_shading,
    fill_by_correspondence,
    multiband_blend,
    nearest_texels,
    padding_gather,
    rasterize_uv,
    unwrap_image,
)


def _tiles(n):
    """n unit squares on tiles u in [k, k+1], two triangles each, no shared UV vertices."""
    uv, tris = [], []
    for k in range(n):
        base = len(uv)
        uv += [(k + 0.1, 0.1), (k + 0.9, 0.1), (k + 0.9, 0.6), (k + 0.1, 0.6)]
        tris += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    return np.array(uv), np.array(tris)


def test_atlas_islands_do_not_overlap_and_fill_by_weight():
    uv, tris = _tiles(3)
    islands = [np.array([0, 1]), np.array([2, 3]), np.array([4, 5])]
    out = atlas_uv(uv, tris, islands, [0.6, 0.2, 0.2])
    assert out.shape == uv.shape and (out >= 0).all() and (out <= 1).all()
    np.testing.assert_array_equal(out, atlas_uv(uv, tris, islands, [0.6, 0.2, 0.2]))  # deterministic
    masks = []
    for isl in islands:
        r = rasterize_uv(out, tris[isl], 128)
        m = np.zeros(128 * 128, bool)
        m[r.texel] = True
        masks.append(m)
    assert (np.sum(masks, 0) <= 1).all()
    areas = [m.sum() for m in masks]
    assert areas[0] > 2 * areas[1] > 0 and areas[2] > 0
    # aspect ratio kept (each island was 0.8 x 0.5)
    ext = np.ptp(out[:4], axis=0)
    assert ext[0] / ext[1] == pytest.approx(1.6, rel=1e-6)


def test_atlas_rejects_bad_islands():
    uv, tris = _tiles(2)
    with pytest.raises(UsageError, match="exactly one island"):
        atlas_uv(uv, tris, [np.array([0, 1])], [1.0])
    with pytest.raises(UsageError, match="shares UV vertices"):
        atlas_uv(uv, np.array([[0, 1, 2], [2, 5, 6]]), [np.array([0]), np.array([1])], [1.0, 1.0])
    with pytest.raises(UsageError):
        atlas_uv(uv, tris, [np.array([0, 1]), np.array([2, 3])], [1.0])


def test_rasterize_uv_interpolates_vertex_values():
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    tris = np.array([[0, 1, 2], [0, 2, 3]])
    r = rasterize_uv(uv, tris, 8)
    assert len(r.texel) == 64
    w = r.interpolation_matrix(tris, 4)
    u = w @ uv[:, 0]
    np.testing.assert_allclose(u, (r.texel % 8 + 0.5) / 8, atol=1e-6)
    sub = r.select(np.array([True, False]))
    assert 0 < len(sub.texel) < 64 and (sub.triangle == 0).all()


def _quad(x0, x1, y0, y1, z):
    v = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], float)
    return v, np.array([[0, 1, 2], [0, 2, 3]])  # counter-clockwise seen from +z: faces the camera


def test_unwrap_masks_occluded_backfacing_and_outside_texels():
    cam = PinholeCamera(torch.zeros(1, 3), torch.zeros(1, 3), torch.tensor([100.0]), torch.tensor([[32.0, 32.0]]),
                        (64, 64))
    back, bt = _quad(-20, 20, -20, 20, -100.0)
    front, ft = _quad(-20, 0, -20, 20, -60.0)  # hides the left half of the back quad
    verts = np.concatenate([back, front])
    depth, scale = depth_map(cam, verts, np.concatenate([bt, ft + 4]))
    assert scale == 1.0 and (depth > 0).any()
    image = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    points = np.array([[-8.0, 0, -100], [8.0, 0, -100], [8.0, 0, -100], [300.0, 0, -100], [8.0, 3, -100]])
    facing = np.array([1.0, 1.0, -0.5, 1.0, 0.2])
    colors, weight = unwrap_image(image, cam, points, facing, depth, scale, edge_px=1)
    assert weight[0] == 0  # behind the front quad
    assert weight[1] == 1  # seen
    assert weight[2] == 0  # faces away
    assert weight[3] == 0  # outside the image
    assert 0 < weight[4] < 1  # grazing: weighted down
    u, v = 32 + 100 * 8 / 100, 32.0
    np.testing.assert_allclose(colors[1], bilinear(image, np.array([u - 0.5]), np.array([v - 0.5]))[0])
    with pytest.raises(UsageError):
        unwrap_image(image, cam, points[:, :2], facing, depth, scale)


def test_bilinear_hits_texel_centres_and_interpolates():
    img = np.arange(12, dtype=np.float32).reshape(3, 4, 1)
    np.testing.assert_allclose(bilinear(img, np.array([2.0, 0.5, -5.0]), np.array([1.0, 0.0, 9.0]))[:, 0],
                               [6.0, 0.5, 8.0])


def test_divide_shading_and_correspondence_fill():
    alb = divide_shading(np.array([[0.4, 0.2, 0.1]]), np.array([[0.8, 0.01, 2.0]]))
    np.testing.assert_allclose(alb, [[0.5, 1.0, 0.05]])
    vals = np.array([[1.0], [2.0], [3.0]])
    w = np.array([1.0, 0.0, 0.5], np.float32)
    out, ow = fill_by_correspondence(vals, w, np.array([2, -1, 0]))
    np.testing.assert_allclose(out[[0, 2], 0], [3.0, 1.0])
    np.testing.assert_allclose(ow, [0.5, 0.0, 1.0])
    pts = np.array([[0.0, 0, 0], [10.0, 0, 0]])
    np.testing.assert_array_equal(nearest_texels(pts, np.array([[9.0, 0, 0], [50.0, 0, 0]]), 2.0), [1, -1])


def _grid_texels(size):
    return np.arange(size * size), TexelGrid.build(np.arange(size * size), size, factor=4)


def test_multiband_keeps_detail_and_joins_layers_without_a_step():
    size = 64
    texel, grid = _grid_texels(size)
    cols = texel % size
    rng = np.random.default_rng(1)
    detail = 0.5 + 0.2 * rng.standard_normal((len(texel), 3)).astype(np.float32)
    # one layer everywhere: returned as is
    one = multiband_blend(grid, detail[None], np.ones((1, len(texel))), np.ones((1, len(texel))))
    np.testing.assert_allclose(one, detail, atol=1e-5)
    # a dark left layer and a bright right one, a hard weight step at column 32
    left = np.full((len(texel), 3), 0.2, np.float32)
    right = np.full((len(texel), 3), 0.8, np.float32)
    wl = (cols < 32).astype(np.float32)
    out = multiband_blend(grid, np.stack([left, right]), np.stack([wl, 1 - wl]), np.stack([wl, 1 - wl]))
    row = out.reshape(size, size, 3)[32, :, 0]
    assert row[2] == pytest.approx(0.2, abs=0.03) and row[-3] == pytest.approx(0.8, abs=0.03)
    assert np.abs(np.diff(row)).max() < 0.15  # a ramp, not a 0.6 step
    assert np.isfinite(out).all()
    # holes: a layer known on a few texels only is filled, finite
    sparse = np.zeros(len(texel), np.float32)
    sparse[::97] = 1
    out = multiband_blend(grid, detail[None], sparse[None], np.ones((1, len(texel))))
    assert np.isfinite(out).all()
    with pytest.raises(UsageError):
        multiband_blend(grid, detail[None], sparse[None, :10], np.ones((1, len(texel))))


def _pull_loops(grid, values, support, weights):
    """The pull to the grid written out texel by texel (the reference for the sparse product)."""
    n, k, c = values.shape
    out = np.zeros((n, c + 2, grid.shape[0] * grid.shape[1]))
    for t in range(k):
        g = grid.cell[t]
        out[:, :c, g] += values[:, t] * support[:, t, None]
        out[:, c, g] += support[:, t]
        out[:, c + 1, g] += weights[:, t]
    return out / grid.factor**2


def _finest_loops(grid, values, support, weights, filled, blended):
    """The finest band written out texel by texel: filled (N, cells, C), blended (cells, C)."""
    n, k, c = values.shape
    out = np.zeros((k, c))
    for t in range(k):
        corners, b = grid.corners[t], grid.bilinear[t]
        out[t] = b @ blended[corners]
        wsum = max(weights[:, t].sum(), 1e-6)
        for i in range(n):
            f = weights[i, t] * support[i, t] / wsum
            if f > 0:
                out[t] += f * (values[i, t] - b @ filled[i, corners])
    return out


def test_pull_and_finest_band_match_texel_by_texel_loops():
    from facerecon.render.bake import _finest_band, _pull_to_grid

    size, n, c = 24, 3, 3
    rng = np.random.default_rng(4)
    texel = np.sort(rng.choice(size * size, 300, replace=False))
    grid = TexelGrid.build(texel, size, factor=4)
    k, cells = len(texel), grid.shape[0] * grid.shape[1]
    values = rng.random((n, k, c), dtype=np.float32)
    support = np.where(rng.random((n, k)) < 0.3, 0, rng.random((n, k))).astype(np.float32)
    weights = rng.random((n, k), dtype=np.float32)
    weights[:, :5] = 0  # texels no layer weighs: the blend alone
    got = _pull_to_grid(grid, values, support, weights)
    assert got.shape == (n, c + 2, cells) and got.dtype == np.float32
    np.testing.assert_allclose(got, _pull_loops(grid, values, support, weights), atol=1e-6)
    filled = rng.random((n, cells, c), dtype=np.float32)
    blended = rng.random((cells, c), dtype=np.float32)
    got = _finest_band(grid, values, support, weights, filled, blended)
    assert got.shape == (k, c) and got.dtype == np.float32
    np.testing.assert_allclose(got, _finest_loops(grid, values, support, weights, filled, blended), atol=1e-5)


def test_grid_smooth_is_a_low_pass():
    size = 32
    texel, grid = _grid_texels(size)
    checker = ((texel // size + texel % size) % 2).astype(float)[:, None]
    sm = grid.smooth(checker)
    np.testing.assert_allclose(sm, 0.5, atol=1e-6)


def test_padding_gather_copies_the_nearest_inside_texel():
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    dst, src = padding_gather(mask, 1)
    assert mask.reshape(-1)[src].all() and not mask.reshape(-1)[dst].any()
    assert len(dst) == 12  # the ring of edge neighbours; corners are sqrt(2) away
