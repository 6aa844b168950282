import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.fitting.detail import DetailConfig, displace_vertices, fit_detail, uv_maps
from facerecon.fitting.detail_losses import symmetry_loss
from facerecon.fitting.state import FaceState
from facerecon.render import render_mesh
from facerecon.render.normal_map import bump_normals, tangent_space_normal_map


def _plane(s=32, texel=0.5):
    i, j = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    p = torch.stack([j * texel, (s - 1 - i) * texel, torch.zeros(s, s)], -1)[None].double()
    n = torch.zeros_like(p)
    n[..., 2] = 1
    return p, n, torch.ones(1, s, s, dtype=torch.bool), j.double()[None] * texel


def test_displacement_moves_vertices_along_their_normals():
    v = np.zeros((3, 3))
    n = np.array([[0, 0, 1.0], [1.0, 0, 0], [0, 1.0, 0]])
    out = displace_vertices(v, n, np.array([0.5, -0.2, 1.0]))
    np.testing.assert_allclose(out, [[0, 0, 0.5], [-0.2, 0, 0], [0, 1.0, 0]])
    with pytest.raises(UsageError):
        displace_vertices(v, n, np.zeros(2))


def test_bump_normals_of_a_ramp_and_zero_displacement():
    p, n, m, x = _plane()
    flat = bump_normals(p, n, torch.zeros_like(x), m)
    torch.testing.assert_close(flat, n)
    tilted = bump_normals(p, n, 0.1 * x, m)[0, 10, 10]
    torch.testing.assert_close(tilted, torch.tensor([-0.1, 0.0, 1.0], dtype=torch.float64) / np.sqrt(1.01))
    ts = tangent_space_normal_map(p, n, 0.1 * x, m)[0, 10, 10] * 2 - 1
    torch.testing.assert_close(ts, tilted)


def test_symmetry_loss_is_zero_for_a_mirrored_map_only():
    d = torch.rand(1, 8, 8)
    mask = torch.ones(1, 8, 8, dtype=torch.bool)
    sym = (d + torch.flip(d, dims=[-1])) / 2
    assert float(symmetry_loss(sym, mask)) < 1e-7
    assert float(symmetry_loss(d, mask)) > 0.01


def _frontal_lit_state(m) -> FaceState:
    """The mean face 700 mm in front of a 256 px camera under a fixed SH light."""
    return FaceState.single(np.zeros(m.num_identity), np.zeros(m.num_expression), np.zeros(3),
                            np.array([0.0, -20.0, -700.0]), 600.0, np.array([128.0, 128.0]), (256, 256),
                            sh=np.r_[[[1.0, 1.0, 1.0]], [[0.3, 0.3, 0.3]], [[0.4, 0.4, 0.4]], [[0.6, 0.6, 0.6]],
                                     np.zeros((5, 3))])


def _render(m, verts, state, albedo) -> np.ndarray:
    with torch.no_grad():
        return render_mesh(torch.as_tensor(verts[None]).float(), m.triangles, state.pinhole(),
                           colors=torch.as_tensor(albedo).float(), sh=torch.as_tensor(state.appearance.sh).float(),
                           antialias=False).image[0].numpy()


def test_a_face_without_planted_detail_keeps_a_small_map(ict_model):
    m = ict_model
    with torch.no_grad():
        verts = m.mean.double().numpy()
    state = _frontal_lit_state(m)
    albedo = np.full((m.num_vertices, 3), 0.6)
    det = fit_detail(m, verts, state, _render(m, verts, state, albedo), albedo, config=DetailConfig(size=128))
    assert det.seen.any()
    assert det.rms_mm() < 0.1
    assert np.abs(det.displacement).max() <= 1.0


def test_the_noise_is_re_estimated_from_what_the_albedo_leaves_unexplained(ict_model):
    # a photo with albedo texture the given (smooth) albedo lacks is fitted with a larger noise, so
    # with more regularisation; a clean render stays at the floor; adaptive_noise=0 keeps `noise`
    m = ict_model
    verts = m.mean.double().numpy()
    state = _frontal_lit_state(m)
    albedo = np.full((m.num_vertices, 3), 0.6)
    textured = albedo * (1 + 0.1 * np.random.default_rng(0).normal(size=albedo.shape))

    def photo(a):
        return _render(m, verts, state, a)

    cfg = DetailConfig(size=128)
    clean = fit_detail(m, verts, state, photo(albedo), albedo, config=cfg).losses["final"]["noise"]
    rough = fit_detail(m, verts, state, photo(textured), albedo, config=cfg)
    fixed = fit_detail(m, verts, state, photo(textured), albedo, config=DetailConfig(size=128, adaptive_noise=0.0))
    assert clean == pytest.approx(cfg.noise_floor)
    assert rough.losses["final"]["noise"] > 2 * cfg.noise_floor
    assert fixed.losses["final"]["noise"] == cfg.noise
    assert rough.rms_mm() < fixed.rms_mm()


def test_detail_needs_a_light(ict_model):
    m = ict_model
    state = FaceState.single(np.zeros(m.num_identity), np.zeros(m.num_expression), np.zeros(3),
                             np.array([0.0, 0.0, -700.0]), 600.0, np.array([64.0, 64.0]), (128, 128))
    with pytest.raises(UsageError, match="SH light"):
        fit_detail(m, m.mean.double().numpy(), state, np.zeros((128, 128, 3)), np.zeros((m.num_vertices, 3)))


def test_uv_maps_mark_the_region(ict_model):
    maps = uv_maps(ict_model, ict_model.mean.double().numpy(), 64, "narrow_face")
    assert maps.region.sum() > 100 and bool((maps.region <= maps.inside).all())


def _planted_detail(model, s, amplitude, period_j, period_i):
    """(mean vertices, uv maps, face region (s, s), a DetailMap of sin/cos bumps on the region)."""
    from facerecon.fitting.detail import DetailMap

    verts = model.mean.double().numpy()
    maps = uv_maps(model, verts, s, "narrow_face")
    region = maps.region[0].numpy()
    i, j = np.mgrid[0:s, 0:s]
    d = np.where(region, amplitude * np.sin(j / period_j) * np.cos(i / period_i), 0.0).astype(np.float32)
    return verts, maps, region, DetailMap(d, region, region, 1.0, maps.texel_mm())


def test_atlas_normal_map_in_the_models_own_layout_matches_the_direct_one(ict_model):
    from facerecon.fitting.detail import DetailMap, atlas_normal_map

    s = 64
    verts, maps, region, det = _planted_detail(ict_model, s, 0.5, 2.0, 3.0)
    d = det.displacement
    atlas = atlas_normal_map(ict_model, verts, det, ict_model.uv.double().numpy(), s)
    direct = tangent_space_normal_map(maps.positions.double(), maps.normals.double(), torch.as_tensor(d[None]),
                                      maps.inside)[0].numpy()
    from scipy.ndimage import binary_erosion

    inner = binary_erosion(region, iterations=2)
    assert np.abs(atlas[inner] - direct[inner]).max() < 0.02 and np.abs(atlas[inner] - [0.5, 0.5, 1]).max() > 0.03
    flat = atlas_normal_map(ict_model, verts, DetailMap(np.zeros((s, s), np.float32), region, region, 1.0, 1.0),
                            ict_model.uv.double().numpy(), s)
    assert np.abs(flat[maps.inside[0].numpy()] - [0.5, 0.5, 1.0]).max() < 1e-3
    with pytest.raises(UsageError):
        atlas_normal_map(ict_model, verts, det, np.zeros((3, 2)), s)


def test_atlas_normal_map_leaves_other_materials_flat(ict_model):
    # ICT gives every material its own UV tile: the eyes' overlap the face's in the model's layout
    from facerecon.fitting.detail import atlas_normal_map
    from facerecon.render import render_to_uv
    from facerecon.texturing import FaceTexturer

    verts, maps, region, det = _planted_detail(ict_model, 64, 0.8, 1.5, 2.0)
    atlas = FaceTexturer.for_model(ict_model, 256).uv
    out = atlas_normal_map(ict_model, verts, det, atlas, 128)
    eye = np.zeros((ict_model.num_vertices, 1), dtype=np.float32)
    eye[ict_model.regions["eyeball_left"].numpy()] = 1.0
    flag, inside = render_to_uv(torch.as_tensor(eye[None]), torch.as_tensor(atlas).float(), ict_model.uv_triangles,
                                128, triangles=ict_model.triangles)
    eyes = inside[0].numpy() & (flag[0, ..., 0].numpy() > 0.999)
    assert eyes.sum() > 20 and np.abs(out[eyes] - [0.5, 0.5, 1.0]).max() < 1e-3
    assert np.abs(out - [0.5, 0.5, 1.0]).max() > 0.05
