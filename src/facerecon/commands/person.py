"""`facerecon reconstruct a.jpg b.jpg c.jpg --same-person -o OUT`: one person from several photos.

Writes OUT/person/ (the shared neutral mesh as mesh.obj/.ply/.glb, person.json) and OUT/<photo>/
per photo (as `reconstruct` writes one photo). Inputs are checked by content first; a photo that
cannot be read or shows no face is reported and left out, the others are fitted (the exit code is
then that photo's, as for `reconstruct`). Everything is written into a hidden temporary sibling
and moved into OUT once complete. Exit code 6 (`person.DifferentPeopleError`): the photos show
different people; the message names the odd photo(s) and nothing is written.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from ..errors import FaceReconError
from ..io.images import check_image_file
from .outputs import check_output_folder, writing_outputs
from .reconstruct import EXAMPLE, Interrupted, _example_image, _new_sibling, _signals_raise_interrupted


def person_command(images: list[str], out: str, mode: str = "fast", device: str = "cpu", model: str = "ict",
                   offline: bool = False, as_json: bool = False, detail: bool = False) -> int:
    """Reconstruct the one person in `images`; returns the exit code (see the module docstring).
    `detail` (full mode): the shared static detail map in OUT/person/, each photo's own part in its folder
    (`PersonReconstruction.save`)."""
    if not images:
        print("facerecon: error: give at least one IMAGE (or --example astronaut)", file=sys.stderr)
        return 2
    try:
        check_output_folder(out)
    except FaceReconError as exc:
        print(f"facerecon: error: {exc}", file=sys.stderr)
        return exc.exit_code
    first_error = 0
    usable, names = [], []
    for name in images:
        try:
            if name != EXAMPLE:
                check_image_file(name)
        except FaceReconError as exc:
            print(f"facerecon: error: {exc}", file=sys.stderr)
            first_error = first_error or exc.exit_code
            continue
        usable.append(name)
        names.append(EXAMPLE if name == EXAMPLE else Path(name).stem)
    if not usable:
        return first_error
    import signal

    try:
        with _signals_raise_interrupted():
            from ..person import PersonReconstructor

            with PersonReconstructor(model=model, device=device, download=not offline, embedder=_embedder()) as person:
                result = person.reconstruct([_example_image() if n == EXAMPLE else n for n in usable], mode=mode,
                                            names=names)
            for name, why in result.skipped.items():
                print(f"facerecon: error: {why if name in why else f'{name}: {why}'}", file=sys.stderr)
                first_error = first_error or 3
            out_root = Path(out)
            tmp = _new_sibling(out_root, "partial")
            try:
                with writing_outputs():
                    result.save(tmp, detail=detail)
                    out_root.mkdir(parents=True, exist_ok=True)
                    for entry in sorted(tmp.iterdir()):
                        target = out_root / entry.name
                        if target.is_dir():
                            shutil.rmtree(target)
                        os.replace(entry, target)
                    tmp.rmdir()
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except Interrupted as stop:  # SIGINT / SIGTERM: the temporary folder is already removed
        print(f"facerecon: interrupted by {signal.Signals(stop.signum).name}; no new result was moved into {out}/ "
              f"(unless it was stopped while moving one in); rerun the command", file=sys.stderr)
        return stop.exit_code
    summary = result.to_dict()
    if as_json:
        print(json.dumps({"out": str(out_root), **summary}, indent=1))
    else:
        print(f"person -> {out_root / 'person'}/ from {len(result.photos)} photo(s)")
        if result.identity_cosine is None and len(result.photos) > 1:
            print(f"  same-person check: {summary['different_people_test']}")
        for p in summary["photos"]:
            flags = f"  {p['flags']}" if p["flags"] else ""
            print(f"  {p['name']}: weight {p['weight']:.2f}, own shape {p['own_identity_distance_mm']:.2f} mm "
                  f"from the shared one{flags}")
    return first_error


def _embedder():
    """dlib's face embedder when `facerecon[dlib]` is installed, else None (shape test only)."""
    from ..evaluation.identity import DlibFaceEmbedder
    from ..landmarks.dlib_detector import DlibMissingError

    try:
        return DlibFaceEmbedder()
    except DlibMissingError:
        return None
