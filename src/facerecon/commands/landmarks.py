"""`facerecon landmarks IMAGE --out lm.json [--overlay lm.png] [--backend mediapipe|dlib]`.

cli.py parses the arguments and calls `landmarks_command`, which returns the exit code
(facerecon.errors: 0 ok, 2 usage, 3 no face, 4 unreadable input).
"""
from __future__ import annotations

import json
import os
import sys

from ..errors import FaceReconError, NoFaceError
from . import quiet_native_stderr
from ..io.images import load_image, save_image
from ..landmarks import create_detector
from ..landmarks.base import FaceLandmarks
from ..landmarks.draw import draw_landmarks
from .outputs import check_output_file, output_error

COORDINATES = "pixels; (u, v) = (column, row), origin at the top-left corner of the image"


def landmarks_command(image_path: str | os.PathLike, out_json: str | os.PathLike,
                      overlay_png: str | os.PathLike | None = None, backend: str = "mediapipe") -> int:
    """Detect the faces in a photo and write their landmarks as JSON (and optionally an overlay).

    The JSON's top level is the largest face (scheme, box, score, points, its iBUG-68 version under
    "ibug68"), plus "faces" with every face in the same form, largest first.

    Returns:
        The exit code; on failure a one-line message goes to stderr.
    """
    try:
        out = check_output_file(out_json)
        if overlay_png is not None:
            check_output_file(overlay_png)
        image = load_image(image_path)
        with quiet_native_stderr():
            with create_detector(backend) as detector:
                faces = detector.detect(image)
        if not faces:
            raise NoFaceError(f"{image_path}: no face found; use a photo with a visible face "
                              f"(at least about 40 pixels wide)")
        h, w = image.shape[:2]
        doc = {"image": str(image_path), "width": w, "height": h, "backend": backend,
               "coordinates": COORDINATES, **_face_json(faces[0]), "faces": [_face_json(f) for f in faces]}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc) + "\n")
        if overlay_png is not None:
            drawn = faces + [f.to_ibug68() for f in faces if f.scheme != "ibug68"]
            save_image(overlay_png, draw_landmarks(image, drawn))
    except FaceReconError as exc:
        print(f"facerecon landmarks: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        err = output_error(exc)
        print(f"facerecon landmarks: {err}", file=sys.stderr)
        return err.exit_code
    return 0


def _face_json(face: FaceLandmarks) -> dict:
    doc = face.to_dict()
    if face.scheme != "ibug68":
        doc["ibug68"] = face.to_ibug68().to_dict()
    return doc
