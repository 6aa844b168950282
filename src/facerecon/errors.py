"""Typed errors a user can cause, each with the CLI exit code it maps to.

Exit codes (documented in the README):
    0 ok, 1 internal error, 2 usage, 3 no face, 4 unreadable or missing input, 5 model missing or bad,
    6 different people (person.DifferentPeopleError), 7 output cannot be written.
"""
from __future__ import annotations


class FaceReconError(Exception):
    """Base class of every error facerecon raises on purpose."""

    exit_code: int = 1


class UsageError(FaceReconError, ValueError):
    """Arguments that do not make sense together (wrong shapes, unknown option values)."""

    exit_code = 2


class NoFaceError(FaceReconError):
    """No face was found in an image."""

    exit_code = 3


class ImageError(FaceReconError):
    """An input image or video is missing, unreadable, truncated or of an unsupported kind."""

    exit_code = 4


class ModelError(FaceReconError):
    """A morphable-model file is missing, corrupt, truncated, of an unknown format or inconsistent."""

    exit_code = 5


class OutputError(FaceReconError):
    """An output folder or file cannot be written: a file stands where a folder must go, no
    permission, a read-only or full disk."""

    exit_code = 7


class RenderError(FaceReconError, ValueError):
    """Geometry that cannot be rendered (NaN/inf vertices, bad triangle indices)."""

    exit_code = 2


class FitError(FaceReconError):
    """A fit that produced non-finite values or could not start."""

    exit_code = 1
