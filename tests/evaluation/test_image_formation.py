import numpy as np
import pytest
import torch

from facerecon.errors import UsageError
from facerecon.evaluation.image_formation import (Lighting, Materials, PointLight, Sensor, render_photo, srgb_decode,
                                                  srgb_encode)
from facerecon.render import PinholeCamera, icosphere

SIZE = 100


def _camera(size=SIZE, focal=250.0):
    """Camera at the origin looking down -z: model space = camera space."""
    return PinholeCamera(torch.zeros(1, 3), torch.zeros(1, 3), torch.tensor([focal]),
                         torch.tensor([[size / 2, size / 2]]), (size, size))


def _plane(z, half=400.0):
    v = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def _sphere(centre, radius):
    v, f = icosphere(3, radius)
    return v.double().numpy() + np.asarray(centre), f.numpy()


def _join(*meshes):
    verts, tris, offset = [], [], 0
    for v, f in meshes:
        verts.append(v)
        tris.append(f + offset)
        offset += len(v)
    return np.concatenate(verts), np.concatenate(tris)


def _matte(n, albedo=0.5, ks=0.0, shininess=20.0):
    m = np.zeros((n, 5))
    m[:, :3] = albedo
    m[:, 3:] = (ks, shininess)
    return Materials(vertex=m)


def _render(verts, tris, lights, materials=None, ambient=0.0, sensor=None, seed=0, **kw):
    materials = materials if materials is not None else _matte(len(verts))
    lighting = Lighting(lights, np.full(3, ambient), ambient_from_above=0.0)
    sensor = sensor if sensor is not None else Sensor(exposure=1.0, noise_read=0.0, noise_shot=0.0)
    return render_photo(verts, tris, _camera(), materials, lighting, np.full((SIZE, SIZE, 3), 0.2), sensor,
                        np.random.default_rng(seed), **kw)


def test_a_sphere_casts_a_shadow_on_the_plane_behind_it():
    # sphere right of the axis, light to the right: the shadow falls on the plane's centre, in view
    verts, tris = _join(_plane(-1000.0), _sphere((150.0, 0.0, -900.0), 50.0))
    light = PointLight(np.array([600.0, 0.0, -600.0]), np.full(3, 3.0))
    lit = _render(verts, tris, [light])
    unshadowed = _render(verts, tris, [light], shadows=False)
    centre = SIZE // 2
    assert lit.shadow[centre, centre] < 0.05 and lit.radiance[centre, centre].max() < 1e-3
    assert unshadowed.radiance[centre, centre].max() > 0.1
    assert lit.shadow[10, 10] > 0.99  # a corner of the plane sees the light
    np.testing.assert_allclose(lit.radiance[10, 10], unshadowed.radiance[10, 10], rtol=1e-5)
    assert lit.alpha.min() == 1.0  # the plane fills the view


def test_an_area_light_gives_a_penumbra_a_point_light_does_not():
    verts, tris = _join(_plane(-1000.0), _sphere((150.0, 0.0, -900.0), 50.0))
    point = _render(verts, tris, [PointLight(np.array([600.0, 0.0, -600.0]), np.full(3, 3.0))])
    area = _render(verts, tris, [PointLight(np.array([600.0, 0.0, -600.0]), np.full(3, 3.0), radius=150.0,
                                            samples=8)])
    partial = lambda r: ((r.shadow > 0.1) & (r.shadow < 0.9)).sum()  # noqa: E731
    assert partial(area) > 3 * max(partial(point), 1)


def test_irradiance_falls_off_with_the_square_of_the_distance():
    near = _render(*_plane(-500.0), [PointLight(np.zeros(3), np.full(3, 1.0))])
    far = _render(*_plane(-1000.0), [PointLight(np.zeros(3), np.full(3, 1.0))])
    c = SIZE // 2
    ratio = near.radiance[c, c] / far.radiance[c, c]
    np.testing.assert_allclose(ratio, 4.0, rtol=0.02)
    np.testing.assert_allclose(far.radiance[c, c], 0.5 / np.pi, rtol=0.02)  # albedo / pi x 1 at 1 m


def test_specular_adds_a_highlight_where_the_mirror_direction_meets_the_eye():
    verts, tris = _sphere((0.0, 0.0, -600.0), 100.0)
    light = [PointLight(np.zeros(3), np.full(3, 1.0))]
    matte = _render(verts, tris, light)
    shiny = _render(verts, tris, light, materials=_matte(len(verts), ks=0.5, shininess=80.0))
    c = SIZE // 2
    boost = shiny.radiance[..., 0] - matte.radiance[..., 0]
    assert boost[c, c] > 2 * matte.radiance[c, c, 0]  # the highlight at the centre
    rim = np.argwhere(matte.alpha > 0.99)
    r = rim[np.argmax(np.hypot(*(rim - c).T))]
    assert boost[r[0], r[1]] < 0.05 * boost[c, c]  # and little toward the outline


def test_the_image_is_8bit_deterministic_and_the_tone_curve_is_monotone():
    verts, tris = _sphere((0.0, 0.0, -600.0), 100.0)
    light = [PointLight(np.array([300.0, 300.0, 0.0]), np.full(3, 2.0), radius=50.0, samples=3)]
    sensor = Sensor(exposure=None, noise_read=0.01, blur_px=0.5, jpeg_quality=80)
    a = _render(verts, tris, light, ambient=0.3, sensor=sensor, seed=3)
    b = _render(verts, tris, light, ambient=0.3, sensor=sensor, seed=3)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.image.dtype == np.float32 and a.image.shape == (SIZE, SIZE, 3)
    np.testing.assert_allclose(a.image * 255, np.round(a.image * 255), atol=1e-3)
    c = _render(verts, tris, light, ambient=0.3, sensor=sensor, seed=4)
    assert not np.array_equal(a.image, c.image)  # the noise differs
    x = np.linspace(0.0, 1.0, 101)
    np.testing.assert_allclose(srgb_decode(srgb_encode(x)), x, atol=1e-6)
    assert np.all(np.diff(srgb_encode(x)) > 0)


def test_a_texture_overrides_the_vertex_materials_on_textured_triangles():
    verts, tris = _plane(-1000.0)
    texture = np.zeros((4, 4, 5))
    texture[..., 0] = 1.0  # red
    texture[..., 4] = 10.0
    mats = _matte(4)
    mats = Materials(vertex=mats.vertex, texture=texture, uv=np.array([[0, 0], [1, 0], [1, 1], [0, 1.0]]),
                     uv_triangles=tris, textured=np.array([True, False]))
    out = _render(verts, tris, [PointLight(np.zeros(3), np.full(3, 1.0))], materials=mats)
    lower_right, upper_left = out.radiance[80, 60], out.radiance[20, 40]  # triangle 0 is below the diagonal
    assert lower_right[0] > 0 and lower_right[1] == 0
    np.testing.assert_allclose(upper_left[0], upper_left[1], rtol=1e-4)


def test_bad_input_is_a_usage_error():
    verts, tris = _plane(-1000.0)
    light = [PointLight(np.zeros(3), np.full(3, 1.0))]
    with pytest.raises(UsageError, match="materials.vertex"):
        _render(verts, tris, light, materials=_matte(3))
    with pytest.raises(UsageError, match="background"):
        render_photo(verts, tris, _camera(), _matte(4), Lighting(light, np.zeros(3)), np.zeros((5, 5, 3)),
                     Sensor(), np.random.default_rng(0))
    with pytest.raises(UsageError, match="vertices"):
        _render(np.full((4, 3), np.nan), tris, light)
    with pytest.raises(UsageError, match="light"):
        _render(verts, tris, [PointLight(np.array([0.0, 0.0, -1000.0]), np.full(3, 1.0),
                                         aim=np.array([0.0, 0.0, -2000.0]))])


def test_area_light_samples_lie_on_a_disc_facing_the_aim():
    light = PointLight(np.array([0.0, 0.0, 500.0]), np.ones(3), radius=100.0, samples=16, aim=np.zeros(3))
    pts = light.sample_points()
    assert pts.shape == (16, 3)
    np.testing.assert_allclose(pts[:, 2], 500.0, atol=1e-9)  # the disc is perpendicular to the aim
    assert np.linalg.norm(pts[:, :2], axis=1).max() <= 100.0
    np.testing.assert_allclose(pts.mean(0), [0.0, 0.0, 500.0], atol=15.0)
