"""A photographic image-formation model that is deliberately not the fit's (issue #15).

The full fit explains a photo as albedo x second-order SH irradiance, with no shadows, no specular
and no tone curve. A benchmark rendered that way grades the photometric term on its own
assumptions, so this module renders differently:

- lights are points or discs (area lights, `samples` points each) at a finite distance, with
  inverse-square falloff, plus an ambient term that is brighter from above;
- each light sample casts shadows: a shadow map rendered from the light by the project's
  rasteriser (`facerecon.render.rasterize`), looked up with 2x2 percentage-closer filtering;
- diffuse (Lambert) plus normalised Blinn-Phong specular with a per-pixel strength and exponent;
- supersampled rasterisation (antialiasing by box filtering), a filmic tone curve and the sRGB
  transfer function, then lens blur, signal-dependent sensor noise, 8-bit quantisation and
  optionally a JPEG round trip.

Materials are per vertex, optionally overridden on some triangles by a texture sampled with the
mesh's UVs (so painted detail is finer than the mesh). All of it knows nothing about faces.

Frames and units: docs/conventions.md (mm; camera space looking down -z, +y up; pixel centres at
+0.5). Radiance is linear; the returned image is display-referred RGB in [0, 1].

    lighting = Lighting([PointLight(np.array([400.0, 200.0, 300.0]), np.array([1.0, 0.95, 0.9]), radius=80.0)],
                        ambient=np.full(3, 0.1))
    photo = render_photo(vertices, triangles, camera, Materials(vertex=mats), lighting, background,
                         Sensor(exposure=1.0), rng)
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import UsageError
from ..render import PinholeCamera, matrix_to_axis_angle, rasterize, sample_texture
from ..render.interpolate import interpolate_packed

MATERIAL_CHANNELS = 5
"""Material layout, per vertex and per texel: linear albedo RGB, specular strength, Blinn-Phong exponent."""
REFERENCE_DISTANCE_MM = 1000.0  # a light's `intensity` is the irradiance it gives at this distance
SHADOW_BIAS_MM = 0.6  # constant depth bias of the shadow test (plus a slope term)
SHADOW_SLOPE_BIAS_MM = 1.5
AUTO_EXPOSURE_KEY = 0.8


@dataclass
class PointLight:
    """A point light, or a disc-shaped area light when `radius` > 0.

    Attributes:
        position: (3,) camera space, mm (the disc's centre).
        intensity: (3,) linear RGB irradiance at REFERENCE_DISTANCE_MM, falling off as 1 / d^2.
        radius: disc radius in mm; the disc faces `aim`.
        samples: points the disc is sampled at (each casts its own shadow); 1 for a point light.
        aim: (3,) camera-space point the light is pointed at (the shadow map is centred there), or
            None for the camera-space origin's direction (0, 0, -1000).
    """

    position: np.ndarray
    intensity: np.ndarray
    radius: float = 0.0
    samples: int = 1
    aim: np.ndarray | None = None

    def sample_points(self) -> np.ndarray:
        """(S, 3) points on the disc (a Vogel spiral: even coverage, deterministic)."""
        centre = np.asarray(self.position, dtype=np.float64)
        n = max(int(self.samples), 1)
        if self.radius <= 0 or n == 1:
            return centre[None]
        aim = _aim(self)
        normal = (aim - centre) / np.linalg.norm(aim - centre)
        a = np.cross(normal, [0.0, 1.0, 0.0] if abs(normal[1]) < 0.9 else [1.0, 0.0, 0.0])
        a /= np.linalg.norm(a)
        b = np.cross(normal, a)
        k = np.arange(n) + 0.5
        r = self.radius * np.sqrt(k / n)
        theta = k * math.pi * (3.0 - math.sqrt(5.0))
        return centre + r[:, None] * (np.cos(theta)[:, None] * a + np.sin(theta)[:, None] * b)


@dataclass
class Lighting:
    """Lights plus an ambient term.

    Attributes:
        lights: the point/area lights.
        ambient: (3,) linear RGB ambient irradiance.
        ambient_from_above: the ambient is `ambient * (1 + a * n_y) / (1 + a)`, n_y the camera-space
            normal's up component (sky brighter than floor), a in [0, 1].
    """

    lights: list[PointLight]
    ambient: np.ndarray
    ambient_from_above: float = 0.3


@dataclass
class Materials:
    """Surface materials (MATERIAL_CHANNELS channels: albedo RGB linear, specular strength, exponent).

    Attributes:
        vertex: (N, 5) per vertex.
        texture: (Ht, Wt, 5) or None; sampled on the triangles where `textured` is True.
        uv: (T, 2) and uv_triangles: (F, 3) the texture coordinates (OBJ convention, see render.texture).
        textured: (F,) bool, the triangles that take their material from the texture.
    """

    vertex: np.ndarray
    texture: np.ndarray | None = None
    uv: np.ndarray | None = None
    uv_triangles: np.ndarray | None = None
    textured: np.ndarray | None = None


@dataclass
class Sensor:
    """How radiance becomes an 8-bit photo.

    Attributes:
        exposure: multiplies the radiance before the tone curve; None: automatic, so that the 80th
            percentile of the diffuse shading (irradiance / pi) over the mesh maps to AUTO_EXPOSURE_KEY
            (the albedo keeps its brightness: a dark skin stays dark).
        exposure_bias_ev: stops added to the automatic exposure.
        noise_read: std of the signal-independent noise (display units, [0, 1]).
        noise_shot: signal-dependent noise: variance = noise_read^2 + noise_shot * value.
        blur_px: std of the Gaussian lens blur in output pixels (0: none).
        jpeg_quality: 1-95 to round-trip through JPEG, None to skip.
    """

    exposure: float | None = 1.0
    exposure_bias_ev: float = 0.0
    noise_read: float = 0.004
    noise_shot: float = 0.0004
    blur_px: float = 0.0
    jpeg_quality: int | None = None


@dataclass
class PhotoRender:
    """image (H, W, 3) float32 display RGB in [0, 1], multiples of 1/255; alpha (H, W) float32
    coverage by the mesh; shadow (H, W) float32 mean light visibility over the samples (1 = lit,
    0 on background); radiance (H, W, 3) float32 linear radiance before the tone curve."""

    image: np.ndarray
    alpha: np.ndarray
    shadow: np.ndarray
    radiance: np.ndarray


def render_photo(vertices: np.ndarray, triangles: np.ndarray, camera: PinholeCamera, materials: Materials,
                 lighting: Lighting, background: np.ndarray, sensor: Sensor, rng: np.random.Generator,
                 supersample: int = 2, shadow_size: int = 512, shadows: bool = True) -> PhotoRender:
    """Render a mesh as a photo (see the module docstring).

    Args:
        vertices: (N, 3) model space, mm. triangles: (F, 3) int, counter-clockwise seen from outside.
        camera: batch-1 PinholeCamera (its image_size is the output's).
        materials: per-vertex (and textured) materials.
        lighting: lights and ambient, camera space.
        background: (H, W, 3) display RGB in [0, 1], composited behind the mesh.
        sensor: tone curve, noise, blur, JPEG.
        rng: draws the sensor noise.
        supersample: rasterise at this multiple of the output size (antialiasing).
        shadow_size: side of each light sample's shadow map in texels.
        shadows: False lights every point as if nothing occluded it (for tests and ablations).
    """
    verts = np.asarray(vertices, dtype=np.float64)
    tris = np.asarray(triangles, dtype=np.int64)
    h, w = camera.image_size
    _check_inputs(verts, tris, camera, materials, background, supersample)
    s = int(supersample)
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    tri_t = torch.as_tensor(tris)
    cam_verts = camera.transform(t(verts)[None].to(camera.rotation.dtype)).float()  # (1, N, 3)
    big = PinholeCamera(camera.rotation.float(), camera.translation.float(), camera.focal.float() * s,
                        camera.principal.float() * s, (h * s, w * s))
    screen = big.camera_to_screen(cam_verts)
    frags = rasterize(screen, tri_t, (h * s, w * s), perspective=True, cull_backfaces=True)
    pix, tri, _ = frags.packed()

    normals = _vertex_normals(cam_verts[0], tri_t)
    attrs = torch.cat([cam_verts[0], normals, t(materials.vertex)], -1)
    _, packed = interpolate_packed(attrs, tri_t, frags)
    packed = packed[0]
    pos, nrm, mat = packed[:, :3], packed[:, 3:6], packed[:, 6:]
    if materials.texture is not None:
        mat = _textured(mat, materials, frags, tri)
    nrm = nrm / nrm.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    view = -pos / pos.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    nrm = torch.where(((nrm * view).sum(-1, keepdim=True) < 0), -nrm, nrm)  # grazing interpolated normals

    radiance, visibility, shading = _shade(pos, nrm, view, mat, lighting, cam_verts[0], tri_t, shadow_size, shadows)
    if sensor.exposure is None:
        key = float(torch.quantile(shading, 0.8)) if len(shading) else 1.0
        exposure = AUTO_EXPOSURE_KEY / max(key, 1e-9) * 2.0 ** sensor.exposure_bias_ev
    else:
        exposure = float(sensor.exposure) * 2.0 ** sensor.exposure_bias_ev
    display = _tone(radiance * exposure)

    k = pix.numel()
    bg = torch.as_tensor(np.asarray(background, dtype=np.float32)).repeat_interleave(s, 0).repeat_interleave(s, 1)
    image = bg.reshape(-1, 3).clone()
    image[pix] = display
    cover = torch.zeros(h * s * w * s)
    cover[pix] = 1.0
    lin = torch.zeros(h * s * w * s, 3)
    lin[pix] = radiance
    vis = torch.zeros(h * s * w * s)
    if k:
        vis[pix] = visibility

    def down(a: Tensor, c: int) -> np.ndarray:
        return a.reshape(h, s, w, s, c).mean((1, 3)).numpy()

    image = down(image, 3)
    image = _develop(image, sensor, rng)
    return PhotoRender(image=image, alpha=down(cover, 1)[..., 0], shadow=down(vis, 1)[..., 0],
                       radiance=down(lin, 3))


def _check_inputs(verts, tris, camera, materials, background, supersample) -> None:
    h, w = camera.image_size
    if verts.ndim != 2 or verts.shape[1] != 3 or not np.isfinite(verts).all():
        raise UsageError(f"vertices must be finite (N, 3), got shape {verts.shape}")
    if tris.ndim != 2 or tris.shape[1] != 3 or (tris.size and (tris.min() < 0 or tris.max() >= len(verts))):
        raise UsageError(f"triangles must be (F, 3) indices into the {len(verts)} vertices")
    if camera.rotation.shape[0] != 1:
        raise UsageError(f"render_photo renders one view: the camera must have batch 1, got {camera.rotation.shape[0]}")
    if materials.vertex.shape != (len(verts), MATERIAL_CHANNELS):
        raise UsageError(f"materials.vertex must be ({len(verts)}, {MATERIAL_CHANNELS}), got {materials.vertex.shape}")
    if materials.texture is not None:
        if materials.texture.ndim != 3 or materials.texture.shape[2] != MATERIAL_CHANNELS:
            raise UsageError(f"materials.texture must be (Ht, Wt, {MATERIAL_CHANNELS}), got {materials.texture.shape}")
        if materials.uv is None or materials.uv_triangles is None or materials.textured is None:
            raise UsageError("a material texture needs uv, uv_triangles and textured")
        if len(materials.uv_triangles) != len(tris) or len(materials.textured) != len(tris):
            raise UsageError("uv_triangles and textured must have one row per triangle")
    if np.asarray(background).shape != (h, w, 3):
        raise UsageError(f"background must be ({h}, {w}, 3), got {np.asarray(background).shape}")
    if int(supersample) != supersample or supersample < 1:
        raise UsageError(f"supersample must be an integer >= 1, got {supersample}")


def _vertex_normals(verts: Tensor, tris: Tensor) -> Tensor:
    """(N, 3) area-weighted vertex normals of (N, 3) vertices."""
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    fn = torch.cross(b - a, c - a, dim=-1)
    out = torch.zeros_like(verts)
    for k in range(3):
        out.index_add_(0, tris[:, k], fn)
    return out / out.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _textured(mat: Tensor, materials: Materials, frags, tri: Tensor) -> Tensor:
    """Replace the per-vertex materials (K, C) of pixels on textured triangles by texture samples."""
    textured = torch.as_tensor(np.asarray(materials.textured, dtype=bool))[tri]
    if not bool(textured.any()):
        return mat
    uv = torch.as_tensor(np.asarray(materials.uv), dtype=torch.float32)
    _, uv_packed = interpolate_packed(uv, torch.as_tensor(np.asarray(materials.uv_triangles, dtype=np.int64)), frags)
    tex = torch.as_tensor(np.asarray(materials.texture, dtype=np.float32))[None]
    sampled = sample_texture(tex, uv_packed[:, textured])[0]
    mat = mat.clone()
    mat[textured] = sampled
    return mat


def _shade(pos: Tensor, nrm: Tensor, view: Tensor, mat: Tensor, lighting: Lighting, cam_verts: Tensor,
           tris: Tensor, shadow_size: int, shadows: bool) -> tuple[Tensor, Tensor]:
    """Linear radiance (K, 3), mean light visibility (K,) and diffuse shading (K,) (grey irradiance
    / pi, shadows included) of K surface points (camera space)."""
    albedo, ks, shininess = mat[:, :3].clamp(0, 1), mat[:, 3:4].clamp_min(0), mat[:, 4:5].clamp_min(1.0)
    up = float(np.clip(lighting.ambient_from_above, 0.0, 1.0))
    sky = (1.0 + up * nrm[:, 1:2]) / (1.0 + up)
    ambient = torch.as_tensor(np.asarray(lighting.ambient, dtype=np.float32)) * sky
    radiance = albedo / math.pi * ambient
    shading = ambient.mean(-1) / math.pi
    visibility = torch.zeros(len(pos))
    count = 0
    for light in lighting.lights:
        points = light.sample_points()
        intensity = torch.as_tensor(np.asarray(light.intensity, dtype=np.float32)) / len(points)
        for p in points:
            to_light = torch.as_tensor(p, dtype=torch.float32) - pos
            dist = to_light.norm(dim=-1, keepdim=True).clamp_min(1e-6)
            ldir = to_light / dist
            ndl = (nrm * ldir).sum(-1, keepdim=True).clamp_min(0.0)
            irradiance = intensity * (REFERENCE_DISTANCE_MM / dist) ** 2 * ndl
            half = ldir + view
            half = half / half.norm(dim=-1, keepdim=True).clamp_min(1e-9)
            ndh = (nrm * half).sum(-1, keepdim=True).clamp(0.0, 1.0)
            specular = ks * (shininess + 8.0) / (8.0 * math.pi) * ndh ** shininess
            vis = (shadow_visibility(pos, nrm, p, _aim(light), cam_verts, tris, shadow_size) if shadows
                   else torch.ones(len(pos)))
            radiance = radiance + vis[:, None] * irradiance * (albedo / math.pi + specular)
            shading = shading + vis * irradiance.mean(-1) / math.pi
            visibility += vis
            count += 1
    return radiance, visibility / max(count, 1), shading


def _aim(light: PointLight) -> np.ndarray:
    return np.asarray(light.aim, dtype=np.float64) if light.aim is not None else np.array([0.0, 0.0, -1000.0])


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 3) rotation taking camera-space offsets from `eye` into a frame looking from `eye` at
    `target` down its -z axis, +y as close to camera-space up as possible."""
    forward = np.asarray(target, dtype=np.float64) - np.asarray(eye, dtype=np.float64)
    z = -forward / np.linalg.norm(forward)
    x = np.cross([0.0, 1.0, 0.0] if abs(z[1]) < 0.99 else [1.0, 0.0, 0.0], z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def shadow_visibility(points: Tensor, normals: Tensor, light: np.ndarray, aim: np.ndarray, cam_verts: Tensor,
                      tris: Tensor, size: int) -> Tensor:
    """(K,) in [0, 1]: how much of a light at `light` (3,) each of K camera-space points (K, 3)
    with unit normals (K, 3) sees past the mesh (cam_verts (N, 3), tris (F, 3)).

    A depth map of the mesh is rasterised from the light, looking at `aim`, with a field of view
    that holds the whole mesh; a point is lit where its depth is within a slope-scaled bias of the
    map's, with 2x2 percentage-closer filtering."""
    rot = look_at(light, aim)
    rel = (cam_verts.double() - torch.as_tensor(light)) @ torch.as_tensor(rot).T
    depth = -rel[:, 2]
    if bool((depth <= 1.0).any()):
        raise UsageError("a light is inside or behind the mesh it lights; move it farther away")
    spread = float((rel[:, :2].abs() / depth[:, None]).max()) * 1.02
    focal = (size / 2) / spread
    cam = PinholeCamera(matrix_to_axis_angle(torch.as_tensor(rot)[None]).float(),
                        torch.as_tensor(-rot @ light, dtype=torch.float32)[None],
                        torch.tensor([focal], dtype=torch.float32),
                        torch.tensor([[size / 2, size / 2]], dtype=torch.float32), (size, size))
    frags = rasterize(cam.camera_to_screen(cam.transform(cam_verts[None])), tris, (size, size), perspective=True,
                      cull_backfaces=False)
    depth_map = torch.where(frags.mask[0], frags.depth[0], torch.full_like(frags.depth[0], float("inf")))
    uvd = cam.to_screen(points[None])[0]
    ldir = torch.as_tensor(light, dtype=torch.float32) - points
    ldir = ldir / ldir.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    cos = (normals * ldir).sum(-1).clamp(0.05, 1.0)
    texel_mm = uvd[:, 2] / focal  # one shadow texel's size at the point's distance
    bias = SHADOW_BIAS_MM + (SHADOW_SLOPE_BIAS_MM + 2.0 * texel_mm) * torch.sqrt(1 - cos**2) / cos
    x, y = uvd[:, 0] - 0.5, uvd[:, 1] - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    vis = torch.zeros(len(points))
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi = (x0 + dx).long().clamp(0, size - 1)
        yi = (y0 + dy).long().clamp(0, size - 1)
        vis += wgt * (uvd[:, 2] - bias <= depth_map[yi, xi]).float()
    return vis


def _tone(radiance: Tensor) -> Tensor:
    """Linear radiance -> display RGB: a filmic curve (Narkowicz's ACES fit), then sRGB encoding."""
    x = radiance.clamp_min(0.0)
    mapped = (x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14)
    return srgb_encode(mapped.clamp(0.0, 1.0))


def srgb_encode(linear: Tensor | np.ndarray):
    """The sRGB transfer function, linear [0, 1] -> encoded [0, 1] (works on tensors and arrays)."""
    lib = torch if isinstance(linear, Tensor) else np
    return lib.where(linear <= 0.0031308, 12.92 * linear, 1.055 * lib.clip(linear, 0.0031308, None) ** (1 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """Inverse of `srgb_encode` on arrays."""
    e = np.asarray(encoded)
    e = e.astype(np.float32) if e.dtype != np.float64 else e
    return np.where(e <= 0.04045, e / 12.92, ((e + 0.055) / 1.055) ** 2.4)


def _develop(image: np.ndarray, sensor: Sensor, rng: np.random.Generator) -> np.ndarray:
    """Lens blur, sensor noise, 8-bit quantisation and JPEG on a display image (H, W, 3)."""
    from scipy.ndimage import gaussian_filter

    if sensor.blur_px > 0:
        image = gaussian_filter(image, sigma=(sensor.blur_px, sensor.blur_px, 0), mode="nearest")
    sigma = np.sqrt(sensor.noise_read**2 + sensor.noise_shot * np.clip(image, 0.0, 1.0))
    image = image + sigma * rng.standard_normal(image.shape)
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    if sensor.jpeg_quality is not None:
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(np.clip(sensor.jpeg_quality, 1, 95)))
        buffer.seek(0)
        with Image.open(buffer) as im:
            pixels = np.asarray(im.convert("RGB"))
    return pixels.astype(np.float32) / 255.0


__all__ = ["MATERIAL_CHANNELS", "Lighting", "Materials", "PhotoRender", "PointLight", "Sensor", "look_at",
           "render_photo", "shadow_visibility", "srgb_decode", "srgb_encode"]
