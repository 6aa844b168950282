"""The z-buffer: exact fill rule (watertight, no double coverage) and identical numba/torch backends."""
import numpy as np
import pytest
import torch

from facerecon.render._zbuffer import zbuffer_numba, zbuffer_torch


def _both(screen, tris, h, w, perspective=False, cull=False, near=1e-3):
    a = zbuffer_numba(screen.numpy(), tris.numpy(), h, w, perspective, cull, near)
    b = zbuffer_torch(screen, tris, h, w, perspective, cull, near).numpy()
    np.testing.assert_array_equal(a, b)
    return a


def _grid_mesh(n: int, lo: float, hi: float, jitter: float, seed: int = 0):
    """A flat (n+1)^2-vertex grid over [lo, hi]^2 with jittered interior vertices, some of them
    moved exactly onto pixel centres or pixel corners (the worst cases of the fill rule)."""
    g = np.random.default_rng(seed)
    t = np.linspace(lo, hi, n + 1)
    xy = np.stack(np.meshgrid(t, t, indexing="xy"), -1).reshape(-1, 2)
    inner = (xy > lo) & (xy < hi)
    inner = inner[:, 0] & inner[:, 1]
    xy[inner] += g.uniform(-jitter, jitter, (inner.sum(), 2))
    ids = np.nonzero(inner)[0]
    xy[ids[::3]] = np.floor(xy[ids[::3]]) + 0.5
    xy[ids[1::3]] = np.round(xy[ids[1::3]])
    tris = []
    for r in range(n):
        for c in range(n):
            a, b, d, e = r * (n + 1) + c, r * (n + 1) + c + 1, (r + 1) * (n + 1) + c, (r + 1) * (n + 1) + c + 1
            tris += [[a, d, e], [a, e, b]] if (r + c) % 2 else [[a, d, b], [b, d, e]]
    tris = np.asarray(tris)
    e1, e2 = xy[tris[:, 1]] - xy[tris[:, 0]], xy[tris[:, 2]] - xy[tris[:, 0]]
    assert (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0] < 0).all(), "the jitter folded the grid"
    screen = np.concatenate([xy, np.ones((len(xy), 1))], 1)
    return torch.tensor(screen[None]), torch.tensor(tris, dtype=torch.long)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_edges_have_no_cracks_and_no_double_coverage(seed):
    screen, tris = _grid_mesh(9, 2.25, 29.75, 0.7, seed)
    full = _both(screen, tris, 32, 32)[0] >= 0
    masks = []
    for part in (tris[0::2], tris[1::2]):
        masks.append(_both(screen, part, 32, 32)[0] >= 0)
    assert not (masks[0] & masks[1]).any(), "a pixel centre is covered by two triangles sharing an edge"
    np.testing.assert_array_equal(masks[0] | masks[1], full)
    centres = np.arange(32) + 0.5
    inside = (centres[:, None] > 2.25) & (centres[:, None] < 29.75) & (centres[None] > 2.25) & (centres[None] < 29.75)
    np.testing.assert_array_equal(full, inside)


def test_a_vertex_on_a_pixel_centre_gives_that_pixel_to_exactly_one_triangle():
    centre = [4.5, 4.5, 1.0]
    ring = [[4.5 + 3 * np.cos(a), 4.5 + 3 * np.sin(a), 1.0] for a in np.linspace(0, 2 * np.pi, 9)[:-1]]
    screen = torch.tensor([[centre] + ring], dtype=torch.float64)
    fan = [[0, 1 + (k + 1) % 8, 1 + k] for k in range(8)]
    covered = [(_both(screen, torch.tensor([f]), 9, 9)[0, 4, 4] >= 0) for f in fan]
    assert sum(covered) == 1


def test_top_left_rule_on_an_axis_aligned_square():
    # a square whose edges run exactly through pixel centres: left and top edges are in, right and bottom out
    screen = torch.tensor([[[1.5, 1.5, 1], [4.5, 1.5, 1], [4.5, 4.5, 1], [1.5, 4.5, 1]]], dtype=torch.float64)
    tid = _both(screen, torch.tensor([[0, 3, 2], [0, 2, 1]]), 6, 6)[0]
    expected = np.zeros((6, 6), bool)
    expected[1:4, 1:4] = True
    np.testing.assert_array_equal(tid >= 0, expected)


def test_backends_agree_on_random_soup_with_perspective_culling_and_bad_triangles():
    g = np.random.default_rng(5)
    n = 300
    screen = np.concatenate([g.uniform(-20, 84, (2, n, 2)), g.uniform(-5, 50, (2, n, 1))], -1)
    screen[0, :5, :2] = [[3e6, 5], [5, -4e6], [1e7, 1e7], [12.5, 12.5], [40.5, 3.5]]  # beyond the guard band
    tris = torch.tensor(g.integers(0, n, (400, 3)))
    for perspective in (False, True):
        for cull in (False, True):
            tid = _both(torch.tensor(screen), tris, 48, 64, perspective, cull, near=1.0)
            assert (tid >= 0).any()


def test_depth_order_and_ties_go_to_the_lower_id():
    quad = [[0, 0], [8, 0], [8, 8], [0, 8]]
    screen = torch.tensor([[p + [z] for z in (5.0, 3.0, 3.0) for p in quad]], dtype=torch.float64)
    tris = torch.tensor([[0, 3, 2], [0, 2, 1], [4, 7, 6], [4, 6, 5], [8, 11, 10], [8, 10, 9]])
    tid = _both(screen, tris, 8, 8)[0]
    assert set(np.unique(tid)) == {2, 3}
