"""Benchmark of the photo texture (facerecon.texturing): ``python benchmarks/bench_texture.py [--size 1024]
[--yaw 60] [--repeat 5] [--threads N] [--save DIR]``.

A synthetic head (ICT-FaceKit's mean shape) with a known, left-right symmetric albedo texture of
fine detail (a painted pattern in model space) is rendered at `--yaw` degrees under an SH light at
512 x 512. The photo is then baked back into the atlas with the true light, and compared with the
true albedo:

- holes: texels of opaque triangles left unfilled (must be 0);
- the unseen side of the face (texels whose mirror is seen): the colour error (mean abs, 8-bit
  units) of the mirrored fill vs that of the mean-albedo fill (the median skin colour);
- sharpness: mean gradient magnitude (8-bit units per texel) on seen face texels, for the truth,
  this bake and today's `Reconstruction.texture()`-style texture (the photo sampled per vertex,
  interpolated in UV), all in the same atlas;
- ms per bake (best of --repeat, wall clock and CPU time) vs the cost of today's per-vertex texture
  measured in the same run (on a shared machine the wall clock grows with the load, CPU time less).

Needs ict-facekit-light under $FACERECON_MODEL_DIR.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from facerecon.models import load_model
from facerecon.render import PinholeCamera, SHLight, render_mesh, render_to_uv, visible_vertices
from facerecon.render.bake import rasterize_uv
from facerecon.texturing import HIDDEN_GROUPS, SOURCE_MIRRORED, SOURCE_PHOTO, FaceTexturer


def true_albedo(points: np.ndarray) -> np.ndarray:
    """A symmetric (in x) skin albedo with detail at 1-10 mm scales, at model-space points (K, 3)."""
    x, y, z = np.abs(points[:, 0]), points[:, 1], points[:, 2]
    skin = np.array([0.72, 0.52, 0.42])
    low = 1 + 0.10 * np.sin(x / 9.0) * np.cos(y / 11.0)
    fine = 0.07 * np.sin(1.7 * x + 0.9 * y) * np.sin(1.3 * y - 1.1 * z) + 0.05 * np.sin(3.1 * x) * np.cos(2.3 * y)
    brows = np.exp(-(((y - 52) / 5.0) ** 2 + ((x - 35) / 22.0) ** 2)) * 0.55
    lips = np.exp(-(((y + 38) / 6.0) ** 2 + (x / 22.0) ** 2))[:, None] * np.array([0.0, 0.35, 0.3])[None]
    rgb = skin[None] * (low + fine)[:, None] * (1 - brows)[:, None] - lips * (z > 90)[:, None]
    return np.clip(rgb, 0, 1)


def legacy_texture(model, tex: FaceTexturer, verts_model, cam_verts, camera, image, size) -> np.ndarray:
    """Today's `Reconstruction.texture()` in fast mode: photo colour per visible vertex, mirrored,
    median skin elsewhere, interpolated in UV space (here in the atlas), islands grown by the EDT."""
    from scipy import ndimage
    from scipy.ndimage import map_coordinates

    tri = torch.as_tensor(tex.occluders)
    vt = torch.as_tensor(verts_model[None], dtype=torch.float32)
    cam32 = PinholeCamera(camera.rotation.float(), camera.translation.float(), camera.focal.float(),
                          camera.principal.float(), camera.image_size)
    with torch.no_grad():
        out = render_mesh(vt, tri, cam32, antialias=False)
        screen = cam32.to_screen(vt)[0].numpy()
    seen = visible_vertices(out.depth[0].numpy(), screen, 2.0)
    cols = np.stack([map_coordinates(image[..., k], [screen[:, 1] - 0.5, screen[:, 0] - 0.5], order=1, mode="nearest")
                     for k in range(3)], 1)
    colors = np.where(seen[:, None], cols, 0.0)
    sym = model.symmetry.numpy()
    mirror = ~seen & seen[sym]
    colors[mirror] = colors[sym[mirror]]
    known = seen | mirror
    colors[~known] = np.median(colors[known], axis=0)
    t, mask = render_to_uv(torch.as_tensor(colors[None], dtype=torch.float32), torch.as_tensor(tex.uv),
                           model.uv_triangles, size, triangles=model.triangles)
    t, mask = t[0].numpy(), mask[0].numpy()
    _, (ri, ci) = ndimage.distance_transform_edt(~mask, return_indices=True)
    return np.clip(t[ri, ci], 0, 1)


def grad_mag(img: np.ndarray, mask: np.ndarray) -> float:
    """Mean gradient magnitude (8-bit units per texel) over texels where the mask and both forward
    neighbours are inside."""
    g = img.mean(-1) * 255
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    gx[:, :-1] = g[:, 1:] - g[:, :-1]
    gy[:-1] = g[1:] - g[:-1]
    m = mask.copy()
    m[:, :-1] &= mask[:, 1:]
    m[:-1] &= mask[1:]
    m[:, -1] = m[-1] = False
    return float(np.hypot(gx, gy)[m].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--yaw", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--save", type=Path, default=None, help="folder for the photo and the textures (PNG)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model("ict")
    size = args.size
    t0 = time.perf_counter()
    tex = FaceTexturer(model, size)
    build_s = time.perf_counter() - t0

    # the truth: albedo per texel of the atlas
    mean = model.mean.double().numpy()
    raster = rasterize_uv(tex.uv, model.uv_triangles.numpy(), size)
    pts = raster.interpolation_matrix(tex.triangles, model.num_vertices) @ mean
    truth = np.zeros((size * size, 3), np.float32)
    truth[raster.texel] = true_albedo(pts)
    truth[tex.pad_dst] = truth[tex.pad_src]  # grow the islands, as the bake does
    truth = truth.reshape(size, size, 3)

    # the photo: 60 deg yaw, an SH light from the upper front
    camera = PinholeCamera.looking_at_origin(1000.0, (512, 512), fov_deg=14.0, dtype=torch.float64)
    camera.rotation = torch.tensor([[0.0, np.radians(args.yaw), 0.0]], dtype=torch.float64)
    camera.translation = torch.tensor([[0.0, 0.0, -1000.0]], dtype=torch.float64)
    sh = SHLight.ambient_directional(1, dtype=torch.float64).coefficients
    vt = torch.as_tensor(mean[None])
    with torch.no_grad():
        photo = render_mesh(vt, torch.as_tensor(tex.occluders), camera, sh=sh, texture=torch.as_tensor(truth[None]),
                            uv=torch.as_tensor(tex.uv, dtype=torch.float64), uv_triangles=model.uv_triangles,
                            background=torch.full((1, 512, 512, 3), 0.3, dtype=torch.float64)).image[0]
    photo = photo.clamp(0, 1).numpy().astype(np.float32)
    cam_verts = camera.transform(vt)[0].numpy()
    sh_np = sh[0].numpy()

    times, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out, info = tex.bake(cam_verts, camera, photo, sh=sh_np)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    legacy_times, legacy_cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        legacy = legacy_texture(model, tex, mean, cam_verts, camera, photo, size)
        legacy_times.append(time.perf_counter() - t0)
        legacy_cpu.append(time.process_time() - c0)

    opaque = np.ones(len(tex.triangles), dtype=bool)
    for g in HIDDEN_GROUPS:
        if g in model.triangle_groups:
            opaque[model.triangle_groups[g].numpy()] = False
    used = raster.select(opaque).texel
    flat = out.reshape(-1, 3)
    holes = int((~np.isfinite(flat[used]).all(1) | (flat[used] == 0).all(1)).sum())

    source = info.source.reshape(-1)
    mirrored = source == SOURCE_MIRRORED
    t_flat = truth.reshape(-1, 3)
    err_mirror = float(np.abs(flat[mirrored] - t_flat[mirrored]).mean() * 255)
    err_mean = float(np.abs(info.skin[None] - t_flat[mirrored]).mean() * 255)
    legacy_flat = legacy.reshape(-1, 3)
    err_legacy = float(np.abs(legacy_flat[mirrored] - t_flat[mirrored]).mean() * 255)
    seen = (source == SOURCE_PHOTO).reshape(size, size)
    sharp = {name: grad_mag(img, seen) for name, img in (("truth", truth), ("bake", out), ("today", legacy))}
    err_seen = float(np.abs(flat[seen.reshape(-1)] - t_flat[seen.reshape(-1)]).mean() * 255)
    err_seen_legacy = float(np.abs(legacy_flat[seen.reshape(-1)] - t_flat[seen.reshape(-1)]).mean() * 255)

    print(f"texture {size}x{size}, photo 512x512 at {args.yaw:.0f} deg yaw, torch threads {torch.get_num_threads()}")
    print(f"per-model build: {build_s:.2f} s (once)")
    print(f"coverage of the face: photo {info.photo:.3f}, mirrored {info.mirrored:.3f}, fallback {info.fallback:.3f}")
    print(f"holes (opaque texels left unfilled): {holes}")
    print(f"unseen side ({mirrored.sum()} texels), mean abs error vs the true albedo (8-bit): mirrored fill "
          f"{err_mirror:.2f}, mean-albedo fill {err_mean:.2f} (ratio {err_mirror / err_mean:.2f}), today's {err_legacy:.2f}")
    print(f"seen face texels ({seen.sum()}), mean abs error (8-bit): bake {err_seen:.2f}, today's {err_seen_legacy:.2f}")
    print(f"sharpness on seen face texels (mean |grad|, 8-bit/texel): truth {sharp['truth']:.3f}, bake {sharp['bake']:.3f}, "
          f"today's {sharp['today']:.3f} (bake/today {sharp['bake'] / sharp['today']:.2f})")
    print(f"ms per bake (best of {args.repeat}): {min(times) * 1e3:.1f}; today's per-vertex texture: "
          f"{min(legacy_times) * 1e3:.1f} (extra {1e3 * (min(times) - min(legacy_times)):+.1f} ms); CPU time (all "
          f"threads) {min(cpu) * 1e3:.1f} vs {min(legacy_cpu) * 1e3:.1f} ms")
    if args.save:
        from PIL import Image

        args.save.mkdir(parents=True, exist_ok=True)
        for name, img in (("photo", photo), ("truth", truth), ("bake", out), ("today", legacy)):
            Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).save(args.save / f"{name}.png")


if __name__ == "__main__":
    main()
