"""Several photos of one person: one shared identity, per-photo expression, pose, camera and light.

    import facerecon
    person = facerecon.reconstruct_person(["a.jpg", "b.jpg", "c.jpg"], mode="fast")
    person.neutral_mesh().export("me.glb")   # identity only, no expression
    person.save("out/")                      # out/person/ (mesh.obj/.ply/.glb, person.json), out/<photo>/

The work, per photo: detection and the one-photo landmark fit (the `Reconstructor`'s detector and
fitters); then the joint landmark fit (`fitting.multi_image_fit`) from the median of the one-photo
identities; full mode adds the joint photometric refinement (`fitting.multi_image_photometric`).

Robust to the photo set:
- a photo with no face is reported (`PersonReconstruction.skipped`) and the others are fitted;
- a photo with several faces uses the largest and is flagged `multiple_faces`;
- identical photos (same pixels) share one photo's weight and are flagged `duplicate_of`;
- a photo whose landmarks the shared face fits badly (RMS above `PersonConfig.poor_fit_fraction`
  of its face size) is down-weighted and flagged `down_weighted`, and the joint fit is redone;
- in full mode, a photo whose photometric fit drifts from its landmarks (as the one-photo
  pipeline's guard, `PipelineConfig.drift_factor`) gives the shared identity no step and is
  flagged `photometric_drift_px`;
- photos of different people raise `DifferentPeopleError` (exit code 6) naming the odd photo(s),
  by two tests: (1) shape: each photo's own one-photo identity against the median of the other
  photos' ones (mm RMS over the face region of the neutral faces), more than
  `PersonConfig.max_disagreement_mm` is another person. With the detector's bias removed, one
  photo's landmarks pull every face toward the same shape: one person's views lie up to 2.1 mm
  apart and another person's photo only 1.2 mm from them (`bench_multiview.py --seed 9 --quick`),
  so the shape cannot tell most people apart and this catches gross disagreement only (a failed
  fit, a drawing). A photo whose one-photo fit reads |yaw| >= `PersonConfig.shape_test_max_yaw_deg`
  is not judged by it: a profile's one-photo identity can lie as far from the others as a gross
  failure does while it is the same person; beyond the threshold it is flagged
  `shape_disagreement_mm` instead; (2) when a face embedder is given (dlib's, with
  `facerecon[dlib]`), the photos' embeddings: a median cosine similarity to the other photos below
  `PersonConfig.min_identity_cosine` is another person. With two photos the pair is named.
- order does not matter: every step is symmetric in the photos.
- one usable photo gives exactly the single-photo pipeline's result.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .errors import FitError, ImageError, NoFaceError, UsageError
from .fitting.multi_image_fit import MultiImageFitResult, fit_multi_image
from .fitting.result import FitResult
from .fitting.state import FaceState
from .io import Mesh, supported_formats
from .landmarks import FaceLandmarks, face_region_mask
from .pipeline import MODES, Reconstructor, load_photo
from .reconstruction import QualityFlags, Reconstruction, photo_copy

PERSON_FOLDER = "person"


EMBEDDING_TEST = "face embeddings (dlib) and face shapes"
SHAPE_ONLY_TEST = ("face shapes only: catches gross disagreement, not most strangers; "
                   "pip install 'facerecon[dlib]' for the face-embedding test")


class DifferentPeopleError(FitError):
    """The photos given as one person show different people (exit code 6)."""

    exit_code = 6

    def __init__(self, message: str, odd: list[str]) -> None:
        super().__init__(message)
        self.odd = odd


@dataclass
class PersonConfig:
    """Thresholds of the several-photo fit (see the module docstring).

    Attributes:
        joint_identity_prior: the joint fit's identity prior, as a multiple of the landmark fit's.
            Each photo's points are de-biased and weighted by the landmark error model as in the
            one-photo pipeline (noise inflated by `PipelineConfig.noise_inflation` for the
            correlation between neighbouring points). Calibrated on training renders
            (`benchmarks/bench_multiview.py --seed 9 --joint-prior 0.1,0.3,1 --poor-fit 0.01,0.05`,
            8 held-out-style people, fast mode; the benchmark's default seed is 1): gap closed by
            3 views 0.061 (x0.1), 0.092 (x0.3), 0.085 (x1), 0.051 (x3), 0.020 (x10); by 5 views
            0.048, 0.085, 0.085, 0.052, 0.021. Re-calibrated with the augmented detector (same
            command, poor fit 0.01): 3 views 0.040 / 0.077 / 0.082 at x0.1 / x0.3 / x1, 5 views
            0.024 / 0.070 / 0.081; full mode (`--mode full --joint-prior 0.3,1`): 3 views 0.181 / 0.202,
            5 views 0.183 / 0.211 at x0.3 / x1: x1. Re-calibrated with face mesh v2 (same command and
            people, 2026-12-02): fast, 3 views 0.082 / 0.083 / 0.080 / 0.073 / 0.047 at x0.1 / x0.3 /
            x0.5 / x1 / x3, 5 views 0.073 / 0.081 / 0.081 / 0.074 / 0.051; full, 3 views 0.228 / 0.222 /
            0.223 at x0.3 / x0.5 / x1, 5 views 0.231 / 0.237 / 0.236: x0.5. Re-calibrated when the
            one-photo prior came to depend on the yaw (`PipelineConfig.identity_prior_by_yaw`: x0.25
            for a frontal photo; same command and people): fast, 3 views 0.088 / 0.087 / 0.083 at
            x0.15 / x0.25 / x0.5, 5 views 0.083 / 0.084 / 0.083; full, 3 views 0.225 / 0.223 and
            5 views 0.238 / 0.236 at x0.25 / x0.5: x0.25, no stronger than one frontal photo's.
        joint_num_identity: identity modes of the joint fit (40: 0.13 vs 0.13 with 100 for 3
            views, 0.15 vs 0.11 for 5).
        max_disagreement_mm: a photo whose own identity is further than this (mm RMS over the
            face) from the median of the others' is another person: about three times the largest
            value seen for one person (2.1 mm, `bench_multiview.py --seed 9 --quick`: 3 people in 1, 2, 3
            and 5 views at yaw 0, +-35, +-60, fast mode), where another person's photo lay 1.2 mm
            from them: a test for gross disagreement only (the module docstring). Re-measured
            (2026-12-04, the pipeline's fits of `bench_multiview.py`'s people, seeds 9 and 1, 16 people
            x 5 views at yaw 0, +-35, +-60, fast mode): photos whose one-photo fit read |yaw| < 40
            (48) lay at most 3.48 mm from the others, those at 44-70 (32) up to 6.14 mm (a +60 view
            fitted at +44); another person's frontal photo 0.85-3.15 mm.
        shape_test_max_yaw_deg: photos whose one-photo fit reads at least this |yaw| are not
            judged by the shape test (flagged `shape_disagreement_mm` when beyond the threshold):
            their one-photo identities are too uncertain (above).
        min_identity_cosine: with a face embedder, a photo whose median cosine similarity to the
            others is below this is another person (0.82: dlib's 0.6 distance on unit vectors).
        poor_fit_fraction: landmark RMS of the joint fit, as a fraction of the photo's face size,
            above which a photo is down-weighted by (fraction / its RMS)^2: inverse-variance
            weights, the photo's residual standing for its landmark noise. Frontal views fit to
            0.7-1 %, yaw 60 views to 2-3 %. With the error model's per-point weights (calibration
            above, joint prior x0.3): gap closed by 3 views 0.092 at 1 %, 0.072 at 5 % (about
            off); by 5 views 0.085 and -0.002.
        outline: each turned photo's outline targets (`Reconstructor.outline_extras`: the person
            segmentation's edge next to the face, |yaw| >= `PipelineConfig.outline_min_yaw_deg`) are
            an image term of the joint landmark fit too, as in the photo's own fast fit. On training
            people (`bench_multiview.py --n 8 --seed 9 --outline off,on`, fast) 3 views closed 0.085 /
            0.154 of the gap, 5 views 0.080 / 0.171 (the joint fit without it lost what the outline
            gave a turned photo alone); the joint prior re-checked with it (`--joint-prior 0.1,0.5,1`):
            3 views 0.158 / 0.147 / 0.128, 5 views 0.169 / 0.162 / 0.144, so x0.25 stays; and after the
            photo pipeline's expression prior went to 3 (`--joint-prior 0.25,0.5,1`): 3 views 0.195 /
            0.179 / 0.155, 5 views 0.234 / 0.216 / 0.187. The targets
            of a 512 px photo take about 1 MB (50 photos: peak RSS 1.55 -> 1.57 GB, `--many 50`).
        silhouette: the joint full fit's photos also fitted to their outlines (the pipeline's
            silhouette term, turned photos only). Off: on training people (`bench_multiview.py --quick
            --mode full --seed 9 --silhouette off,on`) 3 views closed 0.351 / 0.348 of the gap, 5 views
            0.365 / 0.354, at 3.1 / 4.0 s for 3 photos: the other views already pin the profile.
        flag_weight_below: photos weighted below this are flagged `down_weighted` (RMS above 2 %).
        min_weight: the smallest weight a photo gets.
        reweighted_iterations, reweighted_sliding_updates: the fit with those weights starts where
            the unweighted one ended (its identity, poses and outline correspondences), so it needs
            fewer iterations than a fit from the single photos: `bench_multiview.py --groups 1,3,5`
            (seed 1, 8 people) 3 / 5 views closed 0.111 / 0.111 of the gap against 0.109 / 0.110
            restarting from the single-photo fits (12 iterations, 3 updates), the joint fits of 3
            photos 87 ms against 119 ms.
        check_same_person: raise `DifferentPeopleError` on disagreement (else only report it).
        region: the model region over which identities are compared.
    """

    joint_identity_prior: float = 0.25
    joint_num_identity: int = 40
    outline: bool = True
    silhouette: bool = False
    max_disagreement_mm: float = 6.0
    shape_test_max_yaw_deg: float = 40.0
    min_identity_cosine: float = 0.82
    poor_fit_fraction: float = 0.01
    flag_weight_below: float = 0.25
    min_weight: float = 0.05
    reweighted_iterations: int = 6
    reweighted_sliding_updates: int = 2
    check_same_person: bool = True
    region: str = "face"


@dataclass
class PersonReconstruction:
    """One person from several photos.

    Attributes:
        state: the joint `FaceState`: identity (1, K), B rows elsewhere, cameras in the normalised
            frame of `fitting.multi_image_fit` (each photo's own camera is in `photos[i].state`).
        photos: one `Reconstruction` per fitted photo, each with the shared identity.
        names: the photos' names (file stems or given names), in the order given.
        weights: (B,) the weight each photo had in the joint fit.
        own_distance_mm: (B,) mm RMS over the face between each photo's own one-photo identity
            and the shared one. odd_distance_mm: (B,) the same against the median of the others.
        identity_cosine: (B,) median cosine similarity of each photo's face embedding to the
            others', or None without an embedder.
        flags: one dict per photo (down_weighted, duplicate_of, multiple_faces, ...).
        skipped: photo name -> why it was not fitted (no face, unreadable).
        mode: "fast" or "full". timings: seconds by stage.
    """

    state: FaceState
    photos: list[Reconstruction]
    names: list[str]
    weights: np.ndarray
    own_distance_mm: np.ndarray
    odd_distance_mm: np.ndarray
    flags: list[dict]
    skipped: dict[str, str] = field(default_factory=dict)
    mode: str = "fast"
    timings: dict = field(default_factory=dict)
    identity_cosine: np.ndarray | None = None

    @property
    def identity(self) -> np.ndarray:
        """(K,) the shared identity coefficients."""
        return np.asarray(self.state.params.identity[0], dtype=np.float64)

    def neutral_vertices(self, full: bool = False) -> np.ndarray:
        """(V, 3) the shared identity with no expression, model space (mm): the fitted view, or the full model."""
        rec = self.photos[0]
        model = rec.model if full else rec.view
        with torch.no_grad():
            a = torch.as_tensor(self.identity[None], dtype=model.dtype, device=model.device)
            return model.vertices(a, None)[0].cpu().double().numpy()

    def neutral_reconstruction(self) -> Reconstruction:
        """The most frontal of the most-weighted photos, expression zeroed: its colours dress the neutral mesh."""
        order = sorted(range(len(self.photos)), key=lambda i: (-round(float(self.weights[i]), 6),
                                                               round(abs(self.photos[i].pose_deg[0]), 3),
                                                               self.names[i]))
        rec = self.photos[order[0]]
        zero = np.zeros_like(rec.state.params.expression)
        return dataclasses.replace(rec, state=rec.state.replace(expression=zero))

    def neutral_mesh(self) -> Mesh:
        """The full head with the shared identity and no expression (morph targets at weight 0), as `io.Mesh`."""
        return self.neutral_reconstruction().mesh

    def to_dict(self) -> dict:
        """What person.json holds (JSON-ready)."""
        rec = self.photos[0]
        return {
            "facerecon_version": __version__,
            "model": {"name": rec.model.name, "version": rec.model.version, "fitted_view": rec.view.num_vertices},
            "mode": self.mode,
            "units": "mm; model space +y up, +z toward the camera (docs/conventions.md)",
            "identity": [round(float(x), 6) for x in self.identity],
            "photos": [{"name": n, "weight": round(float(w), 4), "own_identity_distance_mm": round(float(d), 3),
                        "distance_to_others_mm": round(float(o), 3),
                        "identity_cosine_to_others": None if self.identity_cosine is None
                        else round(float(self.identity_cosine[k]), 4),
                        "landmark_rms_px": round(p.landmark_error_px(), 3),
                        "yaw_deg": round(float(p.pose_deg[0]), 2), "flags": f}
                       for k, (n, w, d, o, p, f) in enumerate(zip(self.names, self.weights, self.own_distance_mm,
                                                                  self.odd_distance_mm, self.photos, self.flags))],
            "skipped": self.skipped,
            "different_people_test": ("none (one photo)" if len(self.photos) < 2 else
                                      SHAPE_ONLY_TEST if self.identity_cosine is None else EMBEDDING_TEST),
            "timings_s": {k: round(float(v), 5) for k, v in self.timings.items()},
        }

    def save(self, folder: str | Path, detail: bool = False, detail_config=None) -> dict[str, Path]:
        """Write `folder/person/` (mesh.obj/.ply/.glb, albedo.png, person.json) and one folder per
        photo (`Reconstruction.save`, named after the photo); returns the paths by name.

        With `detail` (full mode), also the several-photo fine detail
        (`detail_outputs.compute_person_detail`, `fitting.person_detail.PersonDetailConfig`
        `detail_config`): person/displacement.png, the static map shared by all photos, and per photo
        its combined map (displacement.png) and expression-dependent part (displacement_dynamic.png),
        each with its normals.png carried by the meshes (every mesh written once, after the fit);
        person.json's `displacement` / `detail` say how to read them, or why there is no detail."""
        folder = Path(folder)
        for rec in self.photos:
            rec.check_finite()
        out = folder / PERSON_FOLDER
        folders = photo_folders(self.names)
        summary = self.to_dict()
        extra = None
        if detail:
            from .detail_outputs import compute_person_detail, output_mesh, write_photo_extras
            from .errors import FaceReconError

            try:
                extra = compute_person_detail(self, [folder / n for n in folders], out, detail_config)
            except FaceReconError as err:
                summary["detail"] = {"unavailable": str(err)}
            else:
                summary.update(extra.entries)
        out.mkdir(parents=True, exist_ok=True)
        neutral = self.neutral_reconstruction()
        if extra is not None and extra.neutral_normal_map is not None:
            mesh = output_mesh(neutral, extra.neutral_normal_map)
        else:
            mesh = neutral.mesh
        paths = {fmt: mesh.export(out / f"mesh.{fmt}") for fmt in supported_formats()}
        if extra is not None:
            paths.update(extra.paths)
        for k, (name, rec) in enumerate(zip(folders, self.photos)):
            photo_mesh = None
            if extra is not None and extra.photo_normal_maps[k] is not None:
                photo_mesh = output_mesh(rec, extra.photo_normal_maps[k])
            for key, p in rec.save(folder / name, mesh=photo_mesh).items():
                paths[f"{name}/{key}"] = p
            if extra is not None:
                written = write_photo_extras(folder / name, extra.photo_extras[k])
                paths.update({f"{name}/{key}": p for key, p in written.items()})
        paths["person"] = out / "person.json"
        paths["person"].write_text(json.dumps(summary, indent=1))
        return paths


def photo_folders(names: list[str]) -> list[str]:
    """One folder name per photo: its name, with _2, _3 ... for repeats (in the order given)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        base = n if n != PERSON_FOLDER else f"{n}_photo"
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return out


@dataclass
class _Photo:
    name: str
    source: str | None
    face: FaceLandmarks
    faces_detected: int
    size: tuple[int, int]
    photo: np.ndarray
    focal: float | None
    focal_source: str
    digest: str
    single: FitResult
    image: np.ndarray | None  # kept for full mode only
    timings: dict
    points: np.ndarray  # (L, 2) the points the fits use: de-biased by the error model when there is one
    weights: np.ndarray  # (L,) their weights (the pipeline's, times each point's noise weight)
    outline: dict  # the outline term's extras (`Reconstructor.outline_extras`): empty for a frontal photo


class PersonReconstructor:
    """Reconstructs one person from several photos, reusing a `Reconstructor`'s detector and fitters.

    Args:
        reconstructor: a `facerecon.pipeline.Reconstructor` (default: a new one on ICT-FaceKit).
        config: `PersonConfig`.
        embedder: a face embedder (`embed(image, box) -> (D,)`, e.g.
            `facerecon.evaluation.identity.DlibFaceEmbedder()`) for the different-people test, or None.
        **kwargs: passed to `Reconstructor` when none is given (model, device, download).
    """

    def __init__(self, reconstructor: Reconstructor | None = None, config: PersonConfig | None = None,
                 embedder=None, **kwargs) -> None:
        self.embedder = embedder
        self._own = reconstructor is None
        self.reconstructor = reconstructor if reconstructor is not None else Reconstructor(**kwargs)
        self.config = config or PersonConfig()
        view = self.reconstructor.view
        region = view.regions.get(self.config.region)
        self._region = None if region is None else region.cpu().numpy()
        self._region_basis: tuple[np.ndarray, np.ndarray] | None = None

    def close(self) -> None:
        if self._own:
            self.reconstructor.close()

    def __enter__(self) -> "PersonReconstructor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ the job
    def reconstruct(self, images: list, mode: str = "fast", names: list[str] | None = None,
                    focals: list[float | None] | None = None,
                    check_same_person: bool | None = None) -> PersonReconstruction:
        """Reconstruct the person seen in `images` (paths or (H, W, 3) arrays), in any order.

        Args:
            mode: "fast" (joint landmark fit) or "full" (then the joint photometric fit).
            names: one name per image (default: file stems, or "photo<i>" for arrays).
            focals: known focal lengths in px per image, or None (EXIF or estimated, as the pipeline).
            check_same_person: override `PersonConfig.check_same_person`.

        Raises:
            NoFaceError: no photo has a face. DifferentPeopleError: the photos disagree on the shape.
            UsageError: no images, a bad mode, or names/focals of the wrong length.
        """
        if mode not in MODES:
            raise UsageError(f"mode must be one of {MODES}, got {mode!r}")
        images = list(images)
        if not images:
            raise UsageError("reconstruct_person needs at least one photo")
        names = list(names) if names is not None else [Path(x).stem if isinstance(x, (str, Path)) else f"photo{i}"
                                                       for i, x in enumerate(images)]
        focals = [None] * len(images) if focals is None else list(focals)
        if len(names) != len(images) or len(focals) != len(images):
            raise UsageError(f"got {len(images)} images, {len(names)} names and {len(focals)} focal lengths")
        check = self.config.check_same_person if check_same_person is None else check_same_person
        t0 = time.perf_counter()
        skipped: dict[str, str] = {}
        photos, kept, errors = [], [], []
        for index, (image, name, focal) in enumerate(zip(images, names, focals)):
            try:
                photos.append(self._prepare(image, name, focal, keep_image=mode == "full"))
                kept.append(index)
            except (NoFaceError, ImageError) as exc:
                skipped[name] = str(exc)
                errors.append(exc)
        timings = {"detect_and_single_fit_s": time.perf_counter() - t0}
        if not photos:
            raise type(errors[0])(f"none of the {len(images)} photos could be fitted: "
                                  + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
        if len(photos) == 1:
            return self._single(photos[0], images[kept[0]], mode, skipped, timings)
        return self._joint(photos, mode, skipped, timings, check)

    def _prepare(self, image, name: str, focal: float | None, keep_image: bool) -> _Photo:
        rec = self.reconstructor
        t = time.perf_counter()
        image, source, focal, focal_source = load_photo(image, focal)
        if focal is not None and not (np.isfinite(focal) and focal > 0):
            raise UsageError(f"{name}: focal must be a positive number of pixels, got {focal!r}")
        timings = {"load_s": time.perf_counter() - t}
        t = time.perf_counter()
        faces = rec.detector.detect(image)
        timings["detect_s"] = time.perf_counter() - t
        h, w = image.shape[:2]
        if not faces:
            raise NoFaceError(f"no face found in {name}")
        t = time.perf_counter()
        # as the single-photo pipeline: de-biased points, per-point noise weights, the outline
        single, points, weights, outline = rec.fast_fit(image, faces[0], focal)
        timings["fast_fit_s"] = time.perf_counter() - t
        if not self.config.outline:  # else a turned photo's outline targets go on to the joint fit
            outline = {}
        digest = hashlib.sha1(np.ascontiguousarray((image * 255 + 0.5).astype(np.uint8))).hexdigest()
        return _Photo(name, source, faces[0], len(faces), (h, w), photo_copy(image), focal, focal_source, digest,
                      single, image if keep_image else None, timings, points, weights, outline)

    def _single(self, photo: _Photo, image, mode: str, skipped: dict, timings: dict) -> PersonReconstruction:
        """One usable photo: exactly the single-photo pipeline."""
        if photo.image is not None:
            image = photo.image
        rec = self.reconstructor.reconstruct(image, mode=mode, focal=photo.focal, faces=[photo.face])[0]
        rec.faces_detected = photo.faces_detected
        rec.quality.multiple_faces = photo.faces_detected > 1
        if photo.source is not None:
            rec.source = photo.source
            rec.focal_source = photo.focal_source
        flags = [{"multiple_faces": photo.faces_detected}] if photo.faces_detected > 1 else [{}]
        timings["total_s"] = sum(timings.values())
        return PersonReconstruction(rec.state, [rec], [photo.name], np.ones(1), np.zeros(1), np.zeros(1), flags,
                                    skipped, mode, timings)

    def _joint(self, photos: list[_Photo], mode: str, skipped: dict, timings: dict,
               check: bool) -> PersonReconstruction:
        rec, cfg = self.reconstructor, self.config
        b = len(photos)
        flags: list[dict] = [{} for _ in photos]
        for f, p in zip(flags, photos):
            if p.faces_detected > 1:
                f["multiple_faces"] = p.faces_detected
        # identical photos count as one: they share its weight
        base = np.ones(b)
        groups: dict[str, list[int]] = {}
        for i, p in enumerate(photos):
            groups.setdefault(p.digest, []).append(i)
        for ids in groups.values():
            if len(ids) > 1:
                base[ids] = 1.0 / len(ids)
                for i in ids:
                    flags[i]["duplicate_of"] = sorted(photos[j].name for j in ids if j != i)
        t = time.perf_counter()
        lm = rec.config.landmark
        joint_config = dataclasses.replace(
            lm, num_identity=cfg.joint_num_identity,
            terms={**lm.terms, "identity_prior": lm.terms.get("identity_prior", 1.0) * cfg.joint_identity_prior})
        args = dict(points=[p.points for p in photos], image_sizes=[p.size for p in photos],
                    weights=[p.weights for p in photos], config=joint_config, focals=[p.focal for p in photos],
                    init=[p.single for p in photos], extras=[p.outline for p in photos])
        joint = fit_multi_image(rec.fast_fitter, image_weights=base, **args)
        face_size = np.array([np.linalg.norm(np.ptp(p.face.points[rec.landmark_weights > 0], axis=0)) for p in photos])
        ratio = joint.image_rms_px / face_size
        fit_weight = np.clip((cfg.poor_fit_fraction / np.maximum(ratio, 1e-12)) ** 2, cfg.min_weight, 1.0)
        if (fit_weight < 1).any():  # refit with the weights, from where the first fit ended
            refit = dataclasses.replace(joint_config, iterations=cfg.reweighted_iterations,
                                        sliding_updates=cfg.reweighted_sliding_updates)
            joint = fit_multi_image(rec.fast_fitter, image_weights=base * fit_weight,
                                    **{**args, "config": refit, "init": [joint.image_result(i) for i in range(b)]})
        for i in np.nonzero(fit_weight < cfg.flag_weight_below)[0]:
            flags[i]["down_weighted"] = f"landmark RMS {ratio[i]:.1%} of the face size"
        timings["joint_fit_s"] = time.perf_counter() - t
        own, odd = self._disagreement(joint, photos)
        similarity = self._embedding_agreement(photos)
        yaw = np.array([abs(float(p.single.state.params.pose_deg()[0, 0])) for p in photos])
        judged = yaw < cfg.shape_test_max_yaw_deg
        for i in np.nonzero(~judged & (odd > cfg.max_disagreement_mm))[0]:
            flags[i]["shape_disagreement_mm"] = round(float(odd[i]), 2)
        if check:
            self._check_same_person(np.where(judged, odd, 0.0), similarity, [p.name for p in photos])
        cosine = None if similarity is None else np.array([np.median(np.delete(r, i))
                                                           for i, r in enumerate(similarity)])
        if mode == "full":
            from .fitting.multi_image_photometric import fit_multi_image_photometric

            t = time.perf_counter()
            joint = fit_multi_image_photometric(
                rec.full_fitter, rec.fast_fitter, joint, [p.image for p in photos],
                [face_region_mask(p.face, p.size) for p in photos], rec.eye_pairs, rec.lip_pairs, rec.config.landmark,
                points=[p.points for p in photos], weights=[p.weights for p in photos],
                fix_focal=[p.focal is not None for p in photos],
                extras=[rec.silhouette_extras(p.image, p.face, float(joint.image_state(i).params.pose_deg()[0, 0]))
                        for i, p in enumerate(photos)] if cfg.silhouette else None,
                drift_factor=rec.config.drift_factor, drift_margin_px=rec.config.revert_margin_px)
            for i in np.nonzero(joint.image_drift_px > 0)[0]:
                flags[i]["photometric_drift_px"] = round(float(joint.image_drift_px[i]), 2)
            timings["joint_full_fit_s"] = time.perf_counter() - t
            own, _ = self._disagreement(joint, photos)
        recs = [self._photo_reconstruction(joint, i, p, mode) for i, p in enumerate(photos)]
        timings["total_s"] = sum(timings.values())
        return PersonReconstruction(joint.state, recs, [p.name for p in photos], joint.image_weights, own, odd, flags,
                                    skipped, mode, timings, identity_cosine=cosine)

    def _photo_reconstruction(self, joint: MultiImageFitResult, i: int, p: _Photo, mode: str) -> Reconstruction:
        rec = self.reconstructor
        fit = joint.image_result(i)
        quality = QualityFlags(multiple_faces=p.faces_detected > 1,
                               weak_detection=QualityFlags.weak(p.face.found_by))
        yaw = float(fit.state.params.pose_deg()[0, 0])
        if abs(yaw) > 60.0:
            quality.extreme_yaw = round(yaw, 1)
        face_size = float(np.linalg.norm(np.ptp(p.face.points[rec.landmark_weights > 0], axis=0)))
        if joint.image_rms_px[i] > 0.05 * face_size:
            quality.poor_landmark_fit = round(float(joint.image_rms_px[i]), 2)
        losses = {"single": {"landmark_rms_px": p.single.rms_px},
                  "joint": {"landmark_rms_px": float(joint.image_rms_px[i])}}
        return Reconstruction(state=fit.state, mode=mode, model_source=rec.model_source, view_name=rec.config.view,
                              landmarks=p.face, photo=p.photo, correspondence=fit.correspondence,
                              landmark_weights=p.weights.copy(), quality=quality, losses=losses,
                              timings=dict(p.timings), faces_detected=p.faces_detected, source=p.source,
                              focal_source=p.focal_source)

    # ------------------------------------------------------------------ same person?
    def _neutral_region(self, identities: list[np.ndarray]) -> np.ndarray:
        """(N, R, 3) the face region of the neutral faces of N identities (k_i,) (the first k_i modes)."""
        view = self.reconstructor.view
        k = view.num_identity
        rows = np.zeros((len(identities), k))
        for row, a in zip(rows, identities):
            row[: min(k, len(a))] = a[:k]
        if self._region_basis is None:
            # the neutral face is linear in the identity (no expression, no pose): keep the region's
            # mean and basis, so each comparison is one small product instead of whole-view vertices
            with torch.no_grad():
                mean = view.vertices(torch.zeros((1, k), dtype=view.dtype, device=view.device), None)[0]
            mean = mean.cpu().double().numpy()
            basis = view.identity_basis.detach().cpu().double().numpy()  # (K, V, 3)
            if self._region is not None:
                mean, basis = mean[self._region], basis[:, self._region]
            self._region_basis = (mean, np.ascontiguousarray(basis.reshape(k, -1)))
        mean, basis = self._region_basis
        return mean + (rows @ basis).reshape(len(identities), *mean.shape)

    def _disagreement(self, joint: MultiImageFitResult, photos: list[_Photo]) -> tuple[np.ndarray, np.ndarray]:
        """(B,) mm RMS of each photo's own identity to the shared one, and to the median of the others'."""
        own = [np.asarray(p.single.state.params.identity[0], dtype=np.float64) for p in photos]
        faces = self._neutral_region(own + [np.asarray(joint.state.params.identity[0], dtype=np.float64)])
        singles, shared = faces[:-1], faces[-1]
        to_shared = np.sqrt(((singles - shared) ** 2).sum(-1).mean(-1))
        b = len(photos)
        others = np.stack([np.median(np.delete(singles, i, axis=0), axis=0) for i in range(b)])
        to_others = np.sqrt(((singles - others) ** 2).sum(-1).mean(-1))
        return to_shared, to_others

    def _embedding_agreement(self, photos: list[_Photo]) -> np.ndarray | None:
        """(B, B) cosine similarities of the photos' face embeddings, or None without an embedder."""
        if self.embedder is None:
            return None
        emb = []
        for p in photos:
            scale = p.photo.shape[1] / p.size[1]
            e = np.asarray(self.embedder.embed(p.photo.astype(np.float32) / 255.0,
                                               np.asarray(p.face.box, dtype=np.float64) * scale), dtype=np.float64)
            emb.append(e / max(np.linalg.norm(e), 1e-12))
        return np.stack(emb) @ np.stack(emb).T

    def _check_same_person(self, odd: np.ndarray, similarity: np.ndarray | None, names: list[str]) -> None:
        """Raise `DifferentPeopleError` naming the photos unlike most of the others (embeddings
        first, when there are any, then the shape)."""
        if similarity is not None:
            limit = self.config.min_identity_cosine
            others = [np.delete(similarity[i], i) for i in range(len(names))]
            cosine = np.array([np.median(o) for o in others])
            bad = [i for i in np.argsort(cosine) if np.mean(others[i] < limit) > 0.5]
            _raise_odd(names, bad, [f"median cosine {c:.3f}" for c in cosine],
                       f"face embeddings' cosine similarity below {limit:.2f}")
        limit = self.config.max_disagreement_mm
        bad = [i for i in np.argsort(-odd) if odd[i] > limit]
        _raise_odd(names, bad, [f"{d:.2f} mm" for d in odd], f"face shapes more than {limit:.2f} mm RMS apart")


def _raise_odd(names: list[str], bad: list[int], values: list[str], test: str) -> None:
    if not bad:
        return
    if len(names) == 2:
        raise DifferentPeopleError(f"{names[0]} and {names[1]} look like different people ({values[0]}: {test}); "
                                   f"give photos of one person only", list(names))
    listed = ", ".join(f"{names[i]} ({values[i]})" for i in bad)
    raise DifferentPeopleError(f"not the same person: {listed} unlike the other photos ({test}); remove "
                               f"{'it' if len(bad) == 1 else 'them'} or check the photos", [names[i] for i in bad])


def reconstruct_person(images: list, mode: str = "fast", model: str = "ict", device: str = "cpu",
                       names: list[str] | None = None, download: bool = False,
                       config: PersonConfig | None = None) -> PersonReconstruction:
    """Reconstruct one person from several photos (see `PersonReconstructor` to reuse the set-up)."""
    with PersonReconstructor(config=config, model=model, device=device, download=download) as person:
        return person.reconstruct(images, mode=mode, names=names)
