import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.render import PinholeCamera, SHLight, render_mesh
from facerecon.render.bake import rasterize_uv
from facerecon.texturing import (
    HIDDEN_GROUPS,
    SOURCE_MIRRORED,
    SOURCE_NONE,
    SOURCE_PHOTO,
    FaceTexturer,
    face_texture,
)

SIZE = 256


@pytest.fixture(scope="module")
def texturer(ict_model):
    return FaceTexturer.for_model(ict_model, SIZE)


def _camera(yaw_deg, size=256):
    cam = PinholeCamera.looking_at_origin(1000.0, (size, size), fov_deg=14.0, dtype=torch.float64)
    cam.rotation = torch.tensor([[0.0, np.radians(yaw_deg), 0.0]], dtype=torch.float64)
    return cam


def _symmetric_albedo(points):
    x, y = np.abs(points[:, 0]), points[:, 1]
    base = np.array([0.7, 0.5, 0.4])
    return np.clip(base[None] * (1 + 0.3 * np.sin(x / 7.0) * np.cos(y / 9.0))[:, None], 0, 1)


def _photo(model, texturer, yaw_deg, albedo_fn, sh):
    mean = model.mean.double().numpy()
    raster = rasterize_uv(texturer.uv, model.uv_triangles.numpy(), SIZE)
    truth = np.zeros((SIZE * SIZE, 3))
    truth[raster.texel] = albedo_fn(raster.interpolation_matrix(texturer.triangles, model.num_vertices) @ mean)
    truth[texturer.pad_dst] = truth[texturer.pad_src]
    cam = _camera(yaw_deg)
    with torch.no_grad():
        img = render_mesh(torch.as_tensor(mean[None]), torch.as_tensor(texturer.occluders), cam, sh=sh,
                          texture=torch.as_tensor(truth.reshape(1, SIZE, SIZE, 3)),
                          uv=torch.as_tensor(texturer.uv, dtype=torch.float64), uv_triangles=model.uv_triangles,
                          background=torch.full((1, 256, 256, 3), 0.1, dtype=torch.float64)).image[0]
    return img.clamp(0, 1).numpy().astype(np.float32), cam, cam.transform(torch.as_tensor(mean[None]))[0].numpy(), truth


def test_atlas_covers_every_used_triangle_without_overlap(ict_model, texturer):
    uv, ut = texturer.uv, ict_model.uv_triangles.numpy()
    assert uv.shape == tuple(ict_model.uv.shape) and (uv >= 0).all() and (uv <= 1).all()
    size = 512
    count = np.zeros(size * size, int)
    shares = {}
    for name, ids in ict_model.triangle_groups.items():
        r = rasterize_uv(uv, ut[ids.numpy()], size)
        m = np.zeros(size * size, bool)
        m[r.texel] = True
        count += m
        lo, hi = uv[np.unique(ut[ids.numpy()])].min(0), uv[np.unique(ut[ids.numpy()])].max(0)
        shares[name] = float(np.prod(hi - lo))
    assert count.max() == 1  # no two materials share a texel
    assert 0.55 <= shares["M_Face"] <= 0.70
    # every triangle keeps a non-degenerate UV footprint where it had one
    def area(u):
        a, b, c = u[ut[:, 0]], u[ut[:, 1]], u[ut[:, 2]]
        return 0.5 * np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
    before = area(ict_model.uv.numpy())
    assert (area(uv)[before > 1e-9] > 0).all()


def test_bake_fills_every_opaque_texel_with_finite_colours(ict_model, texturer):
    sh = SHLight.ambient_directional(1, dtype=torch.float64).coefficients
    photo, cam, verts, _ = _photo(ict_model, texturer, 30.0, _symmetric_albedo, sh)
    tex, uv, info = face_texture(verts, None, cam, photo, sh[0].numpy(), None, ict_model, size=SIZE)
    assert tex.shape == (SIZE, SIZE, 3) and tex.dtype == np.float32 and np.isfinite(tex).all()
    assert uv is texturer.uv
    assert info["photo"] + info["mirrored"] + info["fallback"] == pytest.approx(1.0, abs=1e-3)
    opaque = np.ones(len(texturer.triangles), bool)
    for g in HIDDEN_GROUPS:
        opaque[ict_model.triangle_groups[g].numpy()] = False
    used = rasterize_uv(uv, ict_model.uv_triangles.numpy(), SIZE).select(opaque).texel
    assert not (tex.reshape(-1, 3)[used] == 0).all(1).any()


def test_visibility_far_side_is_not_taken_from_the_photo(ict_model, texturer):
    photo, cam, verts, _ = _photo(ict_model, texturer, 60.0, _symmetric_albedo, None)
    _, info = texturer.bake(verts, cam, photo)
    mean = ict_model.mean.double().numpy()
    pts = texturer.face_w @ mean
    src = info.source.reshape(-1)[texturer.face_texel]
    # yaw +60 turns the subject's right side (-x) to the camera: the left cheek faces away or is
    # hidden by the nose
    far = (pts[:, 0] > 40) & (pts[:, 2] > 40)
    near = (pts[:, 0] < -40) & (pts[:, 2] > 40)
    assert far.sum() > 100 and (src[far] != SOURCE_PHOTO).all()
    assert (src[near] == SOURCE_PHOTO).mean() > 0.8
    assert (info.source.reshape(-1)[np.setdiff1d(np.arange(SIZE * SIZE), texturer.used_texel)] == SOURCE_NONE).all()


def test_mirrored_fill_is_close_to_the_truth(ict_model, texturer):
    sh = SHLight.ambient_directional(1, dtype=torch.float64).coefficients
    photo, cam, verts, truth = _photo(ict_model, texturer, 60.0, _symmetric_albedo, sh)
    tex, info = texturer.bake(verts, cam, photo, sh=sh[0].numpy())
    mirrored = info.source.reshape(-1) == SOURCE_MIRRORED
    assert mirrored.sum() > 1000
    err = np.abs(tex.reshape(-1, 3)[mirrored] - truth[mirrored]).mean()
    err_mean = np.abs(info.skin[None] - truth[mirrored]).mean()
    assert err < 0.5 * err_mean


def test_iris_colour_is_sampled_at_the_iris_points(ict_model, texturer):
    blue = np.array([0.1, 0.3, 0.8], np.float32)
    photo = np.broadcast_to(blue, (256, 256, 3)).copy()
    cam = _camera(0.0)
    verts = cam.transform(ict_model.mean.double()[None])[0].numpy()
    ring = np.array([[0, 0], [5, 0], [0, 5], [-5, 0], [0, -5]], float)
    points = np.concatenate([ring + [100, 120], ring + [150, 120]])
    tex, info = texturer.bake(verts, cam, photo, iris_points=points)
    np.testing.assert_allclose(info.iris_color, blue, atol=1e-3)
    eye = tex.reshape(-1, 3)[texturer.eye_texel][texturer.eye_iris > 0.5]
    assert len(eye) > 10 and (eye[:, 2] > eye[:, 0] + 0.3).all()
    default = texturer.bake(verts, cam, photo)[1].iris_color
    assert default[0] > default[2]  # brown without points


def test_bad_inputs_raise_usage_errors(ict_model, texturer):
    cam = _camera(0.0)
    verts = cam.transform(ict_model.mean.double()[None])[0].numpy()
    photo = np.zeros((256, 256, 3), np.float32)
    with pytest.raises(UsageError, match="vertices"):
        texturer.bake(verts[:10], cam, photo)
    with pytest.raises(UsageError, match="image_size"):
        texturer.bake(verts, cam, np.zeros((100, 256, 3), np.float32))
    bad = photo.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(UsageError, match="NaN"):
        texturer.bake(verts, cam, bad)
    with pytest.raises(UsageError, match="iris_points"):
        texturer.bake(verts, cam, photo, iris_points=np.zeros((5, 2)))
    with pytest.raises(UsageError, match="sh"):
        texturer.bake(verts, cam, photo, sh=np.zeros(9))
    with pytest.raises(UsageError, match="size"):
        FaceTexturer(ict_model, 8)


def test_disk_cache_gives_the_same_texturer_and_bake(ict_model, tmp_path, monkeypatch):
    from facerecon import texturing

    monkeypatch.setenv("FACERECON_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(FaceTexturer, "_cache", __import__("weakref").WeakKeyDictionary())
    built = FaceTexturer.for_model(ict_model, 64)
    path = texturing.disk_cache_path(ict_model, 64)
    assert path.is_file() and path.parent.parent == tmp_path
    monkeypatch.setattr(FaceTexturer, "_cache", __import__("weakref").WeakKeyDictionary())
    loaded = FaceTexturer.for_model(ict_model, 64)
    assert loaded is not built
    for name in texturing._TEXTURER_FIELDS:
        a, b = getattr(built, name), getattr(loaded, name)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b), name
        elif hasattr(a, "toarray"):
            assert (a != b).nnz == 0 and a.dtype == b.dtype, name
    cam = _camera(20.0, 64)
    verts = cam.transform(ict_model.mean.double()[None])[0].numpy()
    image = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    ta, _ = built.bake(verts, cam, image)
    tb, _ = loaded.bake(verts, cam, image)
    assert np.array_equal(ta, tb)


def test_a_corrupt_or_stale_cache_file_is_rebuilt(ict_model, tmp_path, monkeypatch):
    from facerecon import texturing

    monkeypatch.setenv("FACERECON_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(FaceTexturer, "_cache", __import__("weakref").WeakKeyDictionary())
    path = texturing.disk_cache_path(ict_model, 32)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    texturer = FaceTexturer.for_model(ict_model, 32)
    assert texturer.size == 32 and len(texturer.face_texel) > 0
    assert FaceTexturer._load(path) is not None  # replaced by a good file
    # the key follows the model's geometry: a changed mean shape never reads this file
    other = ict_model.__class__(**{**vars(ict_model), "mean": ict_model.mean + 0.5})
    assert texturing.disk_cache_path(other, 32) != path
