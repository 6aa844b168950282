"""`facerecon reconstruct IMAGE... -o OUT`: every image's faces, written whole or not at all.

Order of work, so the command answers at once on bad input: the inputs are checked by content
(`check_image_file`, Pillow only) before torch, MediaPipe or the model are imported; then the model
and detector are built once for all images.

Each face's outputs are written by `Reconstruction.save` into a hidden temporary sibling folder
(`.NAME.partial-XXXX`) and renamed into place when complete; an existing result is replaced only
then. SIGINT and SIGTERM end the run with a one-line message and exit 130 / 143: the photos already
finished are kept, the one in progress leaves nothing behind. `--skip-existing` skips images whose
output folder already holds params.json, so a rerun continues where a killed one stopped.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
from pathlib import Path

from ..errors import FaceReconError, OutputError
from ..io.images import check_image_file
from .outputs import check_output_folder, writing_outputs

EXAMPLE = "astronaut"
EXIT_USAGE = 2
# files a previous result may hold: such a folder is swapped whole for the new one
_RESULT_FILES = {"mesh.obj", "mesh.mtl", "mesh.ply", "mesh.glb", "albedo.png", "params.json", "overlay.png",
                 "landmarks.json", "displacement.png", "normals.png", "uncertainty.ply", "uncertainty.png",
                 "extras.json", "displacement_dynamic.png"}


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (a BaseException, so no `except Exception` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def reconstruct_command(images: list[str], out: str, mode: str = "fast", device: str = "cpu",
                        model: str = "ict", max_faces: int = 1, offline: bool = False, as_json: bool = False,
                        skip_existing: bool = False, detail: bool = False, metric: bool = False) -> int:
    """Reconstruct every image; a failing image is reported and skipped, the others still written.

    Returns:
        0 when all succeeded (or were skipped), else the exit code of the first failure; 130 / 143
        when interrupted by SIGINT / SIGTERM.
    """
    if not images:
        print("facerecon: error: give at least one IMAGE (or --example astronaut)", file=sys.stderr)
        return EXIT_USAGE
    if max_faces < 1:
        print("facerecon: error: --max-faces must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        out_root = check_output_folder(out)
    except FaceReconError as exc:
        print(f"facerecon: error: {exc}", file=sys.stderr)
        return exc.exit_code
    summary: list[dict] = []
    first_error = 0
    todo: list[tuple[str, Path]] = []
    for name in images:
        folder = out_root if len(images) == 1 else out_root / (EXAMPLE if name == EXAMPLE else Path(name).stem)
        try:
            if name != EXAMPLE:
                check_image_file(name)
            check_output_folder(folder)
        except FaceReconError as exc:
            print(f"facerecon: error: {exc}", file=sys.stderr)
            summary.append({"image": name, "error": str(exc), "exit_code": exc.exit_code})
            first_error = first_error or exc.exit_code
            continue
        if skip_existing and _has_result(folder):
            summary.append({"image": name, "out": str(folder), "skipped": "params.json already there"})
            if not as_json:
                print(f"{name}: skipped, {folder}/ already holds a result")
            continue
        todo.append((name, folder))
    if todo:
        with _signals_raise_interrupted():
            try:
                first_error = _run(todo, out_root, mode, device, model, max_faces, offline, as_json, summary,
                                   detail, metric) \
                    or first_error
            except Interrupted as stop:
                done = sum(1 for s in summary if "files" in s)
                print(f"facerecon: interrupted by {signal.Signals(stop.signum).name}; {done} face(s) finished "
                      f"and kept in {out_root}/; rerun with --skip-existing to continue", file=sys.stderr)
                return stop.exit_code
    if as_json:
        print(json.dumps(summary, indent=1))
    return first_error


def _run(todo: list[tuple[str, Path]], out_root: Path, mode: str, device: str, model: str, max_faces: int,
         offline: bool, as_json: bool, summary: list[dict], detail: bool = False, metric: bool = False) -> int:
    from tqdm import tqdm

    from ..pipeline import Reconstructor
    from .identity import IdentityScorer

    first_error = 0
    rec = Reconstructor(model, device=device, download=not offline, max_faces=max_faces)
    score_identity = IdentityScorer()
    try:
        bar = tqdm(todo, desc="reconstruct", unit="image", disable=len(todo) < 2 or not sys.stderr.isatty())
        for name, folder in bar:
            try:
                results = rec.reconstruct(_example_image() if name == EXAMPLE else name, mode=mode)
                for k, r in enumerate(results):
                    score_identity(r)
                    target = folder if len(results) == 1 else folder / f"face{k}"
                    with writing_outputs():
                        paths = save_whole(r, target, write=_writer(detail, metric))
                    files = sorted(p.name for p in paths.values())
                    summary.append({"image": name, "face": k, "out": str(target), "mode": mode,
                                    "pose_deg": [round(x, 2) for x in r.pose_deg],
                                    "landmark_rms_px": round(r.landmark_error_px(), 3),
                                    "seconds": round(r.timings.get("total_s", 0.0), 3), "quality": r.quality.to_dict(),
                                    "found_by": r.landmarks.found_by, "files": files})
                    if not as_json:
                        flags = f"  quality: {r.quality.to_dict()}" if r.quality else ""
                        print(f"{name}: face {k} -> {target}/ ({', '.join(files)}){flags}", flush=True)
            except FaceReconError as exc:
                print(f"facerecon: error: {exc if name in str(exc) else f'{name}: {exc}'}", file=sys.stderr)
                summary.append({"image": name, "error": str(exc), "exit_code": exc.exit_code})
                first_error = first_error or exc.exit_code
    finally:
        rec.close()
    return first_error


def _writer(detail: bool, metric: bool):
    """`rec.save` with the `--detail` / `--metric` outputs (detail_outputs.save_with_extras), or None."""
    if not (detail or metric):
        return None
    from ..detail_outputs import save_with_extras

    return lambda rec, folder: save_with_extras(rec, folder, detail=detail, metric=metric, uncertainty=detail)


def save_whole(rec, target: str | os.PathLike, write=None) -> dict:
    """`rec.save` into a temporary sibling of `target`, renamed to `target` once complete.

    `write(rec, folder) -> {name: path}` replaces `rec.save` (e.g. `detail_outputs.save_with_extras`
    for the `--detail` / `--metric` outputs), so whatever it writes appears whole.

    An existing `target` that holds only a previous result's files is swapped for the new one; one
    that holds other files too (`-o .`) keeps them, and the new files are moved in one by one with
    params.json last. On any exception (an interrupt included) the temporary folder is removed.

    Returns:
        The paths `rec.save` returned, relocated to `target`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_sibling(target, "partial")
    try:
        paths = rec.save(tmp) if write is None else write(rec, tmp)
        if not target.exists():
            os.replace(tmp, target)
        elif target.is_dir() and {p.name for p in target.iterdir()} <= _RESULT_FILES:
            old = _new_sibling(target, "old")
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            names = sorted(p.name for p in tmp.iterdir())
            for n in sorted(names, key=lambda n: n == "params.json"):
                os.replace(tmp / n, target / n)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {k: target / Path(p).relative_to(tmp) for k, p in paths.items()}


def _new_sibling(target: Path, kind: str) -> Path:
    """A new empty hidden folder beside `target` (created with the user's umask, unlike mkdtemp);
    `OutputError` where no folder can be made there (e.g. a pseudo file system such as /proc)."""
    while True:
        folder = target.with_name(f".{target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
        except FileNotFoundError as exc:
            raise OutputError(f"{target}: no folder can be made in {target.parent} ({exc.strerror})") from None


def _has_result(folder: Path) -> bool:
    return (folder / "params.json").is_file() or (folder / "face0" / "params.json").is_file()


class _signals_raise_interrupted:
    """Within the block, SIGINT and SIGTERM raise `Interrupted` in the main thread."""

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> None:
        self._saved = {}
        try:
            for s in self._SIGNALS:
                self._saved[s] = signal.signal(s, _raise_interrupted)
        except ValueError:  # not the main thread: leave the handlers alone
            pass

    def __exit__(self, *exc) -> None:
        for s, handler in self._saved.items():
            signal.signal(s, handler)


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signum)


def _example_image():
    import numpy as np
    from skimage import data

    return data.astronaut().astype(np.float32) / 255.0
