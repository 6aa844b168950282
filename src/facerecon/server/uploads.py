"""Checks of an uploaded photo by its content, before a job is queued (the declared content type
and file name are ignored: a JPEG sent as text/plain is a JPEG).

Order: Pillow reads the header only (`facerecon.io.images.check_image_file`: empty, not an
image, corrupt header); the format must be one the pipeline reads; width x height must be within
the server's pixel limit (read from the header, so a small file claiming 100000 x 100000 pixels is
refused without decoding it: the decompression-bomb guard); then the pixels are decoded once, JPEGs
at 1/8 scale straight from their DCT coefficients, so that a truncated file is refused here and
not in a worker.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import ImageError
from ..io.images import check_image_file

FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


class UploadRejected(Exception):
    """An upload the server refuses: `status` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_upload(path: Path, name: str, max_pixels: int) -> str:
    """Check the uploaded file at `path` (`name` is the client's file name, for messages only).

    Returns:
        The file extension for its format (".jpg", ".png", ...).
    Raises:
        UploadRejected: 400 empty / truncated / corrupt, 415 not an image or an unsupported format,
        413 too many pixels.
    """
    from PIL import Image

    if path.stat().st_size == 0:
        raise UploadRejected(400, f"{name}: empty file (0 bytes)")
    try:
        check_image_file(path)
    except ImageError as exc:
        message = str(exc).replace(str(path), name)
        status = 415 if "not an image" in message else 413 if "too large" in message else 400
        raise UploadRejected(status, message) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = _open(path)
        except (OSError, SyntaxError, ValueError) as exc:
            raise UploadRejected(400, f"{name}: corrupt image ({exc})") from None
        with im:
            if im.format not in FORMATS:
                raise UploadRejected(415, f"{name}: {im.format} images are not accepted; send "
                                          f"{', '.join(FORMATS)}")
            w, h = im.size
            if w * h > max_pixels:
                raise UploadRejected(413, f"{name}: {w}x{h} = {w * h / 1e6:.1f} Mpx; the server accepts at most "
                                          f"{max_pixels / 1e6:.1f} Mpx")
            try:
                if im.format == "JPEG":
                    im.draft("RGB", (max(1, w // 8), max(1, h // 8)))
                im.load()
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise UploadRejected(400, f"{name}: truncated or corrupt image ({exc})") from None
            return FORMATS[im.format]


def _open(path: Path):
    from PIL import Image, JpegImagePlugin

    try:
        return Image.open(path)
    except Image.DecompressionBombError:
        # above Pillow's own bomb limit: open the header anyway, so the pixel limit above answers 413
        with open(path, "rb") as f:
            if f.read(3) == b"\xff\xd8\xff":
                return JpegImagePlugin.JpegImageFile(str(path))
        raise UploadRejected(413, "image too large to decode (Pillow's decompression-bomb limit)") from None
