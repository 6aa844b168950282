"""Reading and writing photos as float32 RGB arrays in [0, 1], shape (H, W, 3) (docs/conventions.md).

What `load_image` does with each kind of file:
- EXIF orientation is applied, so the array is upright as a viewer shows it.
- Greyscale (8 or 16 bit) is repeated into three channels; 16-bit greyscale keeps its precision
  (divided by 65535). 16-bit colour PNGs are read by Pillow at 8 bits per channel.
- Transparency (RGBA, LA, palette with transparency) is composited on white: a cut-out portrait
  then looks like a studio shot instead of a face on black, which would bias a photometric fit.
- Palette, CMYK and other modes are converted to RGB.
- Large images are shrunk while decoding so the result has at most `MAX_PIXELS` pixels (by an
  integer factor; JPEGs are decoded directly at 1/2, 1/4 or 1/8 scale, so a 20000x20000 JPEG needs
  about 20 MB, not 1.2 GB). Other formats are decoded in full first, so they are refused above
  `MAX_DECODE_PIXELS`.
- A missing, empty, truncated or non-image file raises `ImageError` naming the file and the problem.

`check_image_file` does the same checks without decoding (for a command line that answers at once),
and `exif_focal_px` reads the camera's focal length in pixels from EXIF when the photo has it.
"""
from __future__ import annotations

import contextlib
import math
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import ImageError, UsageError

# At most 4096 x 4096 pixels come back (192 MB as float32 RGB); bigger photos are shrunk.
MAX_PIXELS = 4096 * 4096
# Formats other than JPEG are decoded at full size before shrinking: refuse what would need more
# than ~400 MB (RGBA) to decode.
MAX_DECODE_PIXELS = 100_000_000


def check_input_file(path: str | os.PathLike, readable: bool = False) -> Path:
    """`path` as a Path if it is an existing, non-empty file (and, with `readable`, one this process
    may read); else `ImageError` naming the problem. The first check of every input reader."""
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: file not found")
    if not p.is_file():
        raise ImageError(f"{p}: not a file")
    if readable and not os.access(p, os.R_OK):
        raise ImageError(f"{p}: not readable (permission denied)")
    if p.stat().st_size == 0:
        raise ImageError(f"{p}: empty file (0 bytes)")
    return p


def load_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS,
               max_decode_pixels: int = MAX_DECODE_PIXELS) -> np.ndarray:
    """Read a photo as float32 RGB in [0, 1], shape (H, W, 3), upright (EXIF orientation applied).

    Args:
        path: image file (JPEG, PNG, WebP, TIFF, BMP, GIF: whatever Pillow reads).
        max_pixels: larger images are shrunk by an integer factor to at most this many pixels.
        max_decode_pixels: non-JPEG images larger than this are refused (they cannot be shrunk
            while decoding).

    Raises:
        ImageError: the file is missing, empty, not an image, truncated or corrupt, or too large.
    """
    from PIL import Image, ImageOps

    p = check_input_file(path)
    if max_pixels < 1:
        raise UsageError(f"max_pixels must be >= 1, got {max_pixels}")
    with _pillow_errors(p):
        with warnings.catch_warnings():
            # we enforce our own pixel limits below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = _open(p)
            with im:
                w, h = im.size
                factor = _shrink_factor(w * h, max_pixels)
                if factor > 1 and im.format == "JPEG":
                    # decode at 1/2, 1/4 or 1/8 scale straight from the DCT coefficients
                    im.draft(im.mode, (math.ceil(w / factor), math.ceil(h / factor)))
                elif w * h > max_decode_pixels:
                    raise ImageError(
                        f"{p}: {w}x{h} is too large to decode ({w * h / 1e6:.0f} Mpx > "
                        f"{max_decode_pixels / 1e6:.0f} Mpx for {im.format or 'this format'}); "
                        f"shrink it or save it as JPEG")
                im.load()
                im = ImageOps.exif_transpose(im)
                factor = _shrink_factor(im.size[0] * im.size[1], max_pixels)
                if factor > 1:
                    if im.mode.startswith("I;16"):
                        im = im.convert("I")
                    elif im.mode not in ("L", "RGB", "RGBA", "LA", "I", "F"):
                        im = im.convert("RGBA")
                    im = im.reduce(factor)
                return _to_float_rgb(im)


def check_image_file(path: str | os.PathLike) -> None:
    """Check, without decoding the pixels, that `path` is a readable image file.

    Reads the header (Pillow's `verify`, which also checks PNG chunk CRCs): cheap enough to run on
    every input before any model is loaded. Imports Pillow only.

    Raises:
        ImageError: missing, not a file, unreadable (permissions), empty, or not an image by content.
    """
    from PIL import Image

    p = check_input_file(path, readable=True)
    with _pillow_errors(p):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _open(p) as im:
                im.verify()


@contextlib.contextmanager
def _pillow_errors(p: Path):
    """Pillow's exceptions while reading `p` as `ImageError`s that name the file and the problem."""
    from PIL import Image, UnidentifiedImageError

    try:
        yield
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{p}: not an image, or a format Pillow cannot read") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{p}: too large to decode ({exc}); shrink it or save it as JPEG") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{p}: truncated or corrupt image ({exc})") from None


# EXIF tags (in the Exif sub-IFD 0x8769)
_EXIF_IFD = 0x8769
_FOCAL_LENGTH, _FOCAL_35MM = 0x920A, 0xA405
_FOCAL_PLANE_X_RES, _FOCAL_PLANE_UNIT = 0xA20E, 0xA210
_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003
# FocalPlaneResolutionUnit: 2 inch, 3 cm (the standard); 4 mm and 5 um (written by some cameras)
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}
_FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)


def exif_focal_px(path: str | os.PathLike, image_size_hw: tuple[int, int]) -> tuple[float, str] | None:
    """The camera's focal length in pixels of an image of `image_size_hw`, from the file's EXIF.

    Args:
        path: the photo.
        image_size_hw: (H, W) of the image the focal length is for (e.g. `load_image`'s result,
            upright and possibly shrunk); EXIF sizes are converted to it.

    Returns:
        (focal_px, source) or None when the EXIF lacks what is needed or the file has none. Sources:
        "FocalLengthIn35mmFilm": f35 * (image diagonal px) / (36x24 mm diagonal), the
        35 mm-equivalent definition by the diagonal (equal to f35 / 36 * W for a 3:2 photo);
        "FocalLength+FocalPlaneXResolution": FocalLength (mm) times the sensor's pixels per mm,
        scaled from the EXIF pixel size (PixelXDimension, else the stored size) to this image.
        The first is preferred: the focal-plane resolution is often missing or for another size.
    """
    from PIL import Image

    h, w = (int(x) for x in image_size_hw)
    if h < 1 or w < 1:
        raise UsageError(f"image_size_hw must be positive, got {image_size_hw}")
    try:
        with Image.open(path) as im:
            stored_w, stored_h = im.size
            exif = im.getexif()
            tags = dict(exif.get_ifd(_EXIF_IFD))
    except (OSError, SyntaxError, ValueError, EOFError):
        return None

    def number(tag: int) -> float | None:
        try:
            value = float(tags[tag])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return None
        return value if math.isfinite(value) and value > 0 else None

    f35 = number(_FOCAL_35MM)
    if f35 is not None:
        return f35 * math.hypot(w, h) / _FULL_FRAME_DIAGONAL_MM, "FocalLengthIn35mmFilm"
    focal_mm, x_res = number(_FOCAL_LENGTH), number(_FOCAL_PLANE_X_RES)
    unit_mm = _UNIT_MM.get(int(tags.get(_FOCAL_PLANE_UNIT, 2) or 0))
    if focal_mm is None or x_res is None or unit_mm is None:
        return None
    exif_w, exif_h = number(_PIXEL_X) or stored_w, number(_PIXEL_Y) or stored_h
    # the sensor resolution is for the full-size image; the longer sides match whatever the rotation
    scale = max(w, h) / max(exif_w, exif_h)
    return focal_mm * x_res / unit_mm * scale, "FocalLength+FocalPlaneXResolution"


PNG_COMPRESS_LEVEL = 2  # zlib level of the PNGs written (textures, overlays): speed over the last bytes


def save_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an (H, W, 3) or (H, W) image, float in [0, 1] (clipped) or uint8, in the format of the
    file's extension (8 bits per channel). Missing parent folders are created."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise UsageError(f"save_image expects (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise UsageError(f"save_image expects float in [0, 1] or uint8, got {arr.dtype}")
        arr = np.round(np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0).astype(np.uint8)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # PNG at zlib level 2: about 3x faster than Pillow's default 6 for about 25 % more bytes
    options = {"compress_level": PNG_COMPRESS_LEVEL} if p.suffix.lower() == ".png" else {}
    try:
        Image.fromarray(np.ascontiguousarray(arr)).save(p, **options)
    except (ValueError, KeyError) as exc:
        raise ImageError(f"{p}: cannot write this image format ({exc})") from None


def _open(p: Path):
    from PIL import Image, JpegImagePlugin

    try:
        return Image.open(p)
    except Image.DecompressionBombError:
        with open(p, "rb") as f:
            is_jpeg = f.read(3) == b"\xff\xd8\xff"
        if not is_jpeg:
            raise
    # Pillow refuses to even open a JPEG above its bomb limit; a JPEG can be decoded at 1/8
    # scale, so open it through the plugin (which skips that check) and let `draft` shrink it.
    return JpegImagePlugin.JpegImageFile(str(p))


def _shrink_factor(pixels: int, max_pixels: int) -> int:
    return max(1, math.ceil(math.sqrt(pixels / max_pixels))) if pixels > max_pixels else 1


def _grey_full_scale(mode: str, arr: np.ndarray) -> float:
    """The value that stands for white in a greyscale image of more than 8 bits: 65535 for
    16-bit ("I;16*"); for 32-bit integers ("I") and floats ("F") the smallest of the usual
    ranges that holds the image's largest value: 1 (floats only), 255 (8-bit data widened),
    65535 (16-bit), else the largest value itself."""
    if mode.startswith("I;16"):
        return 65535.0
    top = float(arr.max()) if arr.size else 0.0
    for scale in ((1.0,) if mode == "F" else ()) + (255.0, 65535.0):
        if top <= scale * (1 + 1e-6):
            return scale
    return top


def _to_float_rgb(im) -> np.ndarray:
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        # greyscale of more than 8 bits: "I;16" (16-bit), "I" (32-bit integers, e.g. a 16-bit PNG)
        # or "F" (32-bit float), whose range the file does not state: see `_grey_full_scale`
        arr = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        arr /= _grey_full_scale(mode, arr)
        return np.repeat(np.clip(arr, 0.0, 1.0)[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[:, :, 3:4]
        return np.ascontiguousarray(rgba[:, :, :3] * alpha + (1.0 - alpha))
    if mode != "RGB":
        im = im.convert("RGB")
    arr = np.array(im, dtype=np.float32)
    arr /= 255.0  # in place: no second full-size float copy
    return arr
