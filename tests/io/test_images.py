"""load_image / save_image on images the tests write: modes, EXIF orientation, bad files, huge files."""
from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from facerecon.errors import ImageError, UsageError
from facerecon.io.images import MAX_PIXELS, check_image_file, exif_focal_px, load_image, save_image


def _rgb(h=20, w=30, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int, height: int, bit_depth: int, colour_type: int, raw_rows: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw_rows))
            + _png_chunk(b"IEND", b""))


def _huge_constant_jpeg(path, width: int, height: int) -> None:
    """A grey baseline JPEG of any size in a few MB, without ever holding it in memory: every 8x8
    block of a constant mid-grey image has the same 6-bit code, so the scan is a repeated pattern."""
    buf = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buf, "JPEG", quality=75)
    d = buf.getvalue()
    sof, sos = d.index(b"\xff\xc0"), d.index(b"\xff\xda")
    header_end = sos + 2 + struct.unpack(">H", d[sos + 2:sos + 4])[0]
    head = bytearray(d[:header_end])
    head[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    pattern = d[header_end:-2]  # 4 blocks = 24 bits = 3 bytes
    assert pattern == b"\x28\xa2\x8a" and width % 16 == 0 and height % 16 == 0
    with open(path, "wb") as f:
        f.write(head)
        f.write(pattern * ((width // 8) * (height // 8) // 4))
        f.write(b"\xff\xd9")


def test_rgb_png_roundtrip(tmp_path):
    a = _rgb()
    save_image(tmp_path / "deep" / "a.png", a)  # parent folders are created
    img = load_image(tmp_path / "deep" / "a.png")
    assert img.dtype == np.float32 and img.shape == (20, 30, 3)
    assert np.array_equal(np.round(img * 255).astype(np.uint8), a)


def test_save_float_clips_and_rounds(tmp_path):
    f = np.array([[[-0.5, 0.5, 2.0]]], np.float32)
    save_image(tmp_path / "f.png", f)
    assert np.asarray(Image.open(tmp_path / "f.png")).tolist() == [[[0, 128, 255]]]
    save_image(tmp_path / "g.png", np.zeros((4, 5), np.float32))
    assert load_image(tmp_path / "g.png").shape == (4, 5, 3)
    with pytest.raises(UsageError):
        save_image(tmp_path / "x.png", np.zeros((4, 5, 2)))


def test_greyscale_8bit(tmp_path):
    g = _rgb()[:, :, 0]
    Image.fromarray(g).save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.shape == (20, 30, 3)
    assert np.allclose(img, (g / 255.0)[:, :, None], atol=1e-6)


def test_greyscale_16bit_keeps_precision(tmp_path):
    g = np.array([[0, 1000, 40000, 65535]], dtype=np.uint16)
    Image.fromarray(g).save(tmp_path / "g16.png")
    img = load_image(tmp_path / "g16.png")
    assert img.shape == (1, 4, 3)
    assert np.allclose(img[0, :, 1], g[0] / 65535.0, atol=1e-6)  # 1000/65535 is not a multiple of 1/255


@pytest.mark.parametrize("values, white", [
    ([0.0, 0.25, 0.5, 1.0], 1.0),       # float in [0, 1]
    ([0.0, 64.0, 128.0, 255.0], 255.0),  # 8-bit data stored as float (Pillow's convert("F"))
    ([0.0, 1000.0, 40000.0, 65535.0], 65535.0),  # 16-bit data stored as float
])
def test_float_greyscale_tiff_is_scaled_by_its_range(tmp_path, values, white):
    g = np.array([values], dtype=np.float32)
    Image.fromarray(g, mode="F").save(tmp_path / "f.tiff")
    img = load_image(tmp_path / "f.tiff")
    assert img.shape == (1, 4, 3)
    np.testing.assert_allclose(img[0, :, 0], np.array(values) / white, atol=1e-6)


def test_32bit_integer_greyscale_holding_8bit_data(tmp_path):
    g = np.array([[0, 64, 128, 255]], dtype=np.int32)
    Image.fromarray(g, mode="I").save(tmp_path / "i.tiff")
    np.testing.assert_allclose(load_image(tmp_path / "i.tiff")[0, :, 1], g[0] / 255.0, atol=1e-6)


def test_colour_16bit_png(tmp_path):
    rgb16 = np.array([[[65535, 0, 32768], [1000, 50000, 65535]]], dtype=np.uint16)
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb16)
    (tmp_path / "c16.png").write_bytes(_png(2, 1, 16, 2, rows))
    img = load_image(tmp_path / "c16.png")
    assert img.shape == (1, 2, 3)
    assert np.allclose(img, rgb16 / 65535.0, atol=1.0 / 255)


def test_rgba_composites_on_white(tmp_path):
    rgba = np.array([[[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 255, 128]]], np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert np.allclose(img[0, 0], (1, 0, 0)) and np.allclose(img[0, 1], (1, 1, 1))
    a = 128 / 255
    assert np.allclose(img[0, 2], (1 - a, 1 - a, 1), atol=1e-6)
    # greyscale + alpha, and a palette with a transparent entry
    Image.fromarray(np.array([[[0, 0], [0, 255]]], np.uint8), "LA").save(tmp_path / "la.png")
    assert np.allclose(load_image(tmp_path / "la.png")[0], [(1, 1, 1), (0, 0, 0)])
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 255, 0, 10, 20, 30] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.save(tmp_path / "p.png", transparency=0)
    assert np.allclose(load_image(tmp_path / "p.png")[0] * 255, [(255, 255, 255), (10, 20, 30)], atol=0.5)


def test_exif_orientation_is_applied(tmp_path):
    # stored 40 wide x 20 high with a red left half; orientation 6 = rotate 90 degrees clockwise to view
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)
    a[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    img = load_image(tmp_path / "rot.jpg")
    assert img.shape == (40, 20, 3)
    assert img[5, :, 0].mean() > 0.9 and img[5, :, 2].mean() < 0.1   # top: red
    assert img[35, :, 2].mean() > 0.9 and img[35, :, 0].mean() < 0.1  # bottom: blue


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    img = load_image(tmp_path / "c.jpg")
    assert img.shape == (8, 8, 3) and img[..., 0].mean() > 0.9 and img[..., 1].mean() < 0.1


@pytest.mark.parametrize("kind,message", [
    ("missing", "file not found"), ("folder", "not a file"), ("empty", "empty file"),
    ("text", "not an image"), ("truncated_jpeg", "truncated"), ("truncated_png", "truncated"),
])
def test_bad_files_raise_image_error_naming_the_file(tmp_path, kind, message):
    path = tmp_path / f"bad_{kind}.img"
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello, not an image\n")
    elif kind.startswith("truncated"):
        fmt = "JPEG" if kind.endswith("jpeg") else "PNG"
        buf = io.BytesIO()
        Image.fromarray(_rgb(64, 64)).save(buf, fmt)
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert info.value.exit_code == 4


def test_large_images_are_shrunk_by_an_integer_factor(tmp_path):
    a = _rgb(300, 400)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(a).save(tmp_path / "a.jpg")
    assert load_image(tmp_path / "a.png", max_pixels=10_000).shape == (75, 100, 3)  # factor 4
    assert load_image(tmp_path / "a.jpg", max_pixels=10_000).shape == (75, 100, 3)  # JPEG draft 1/4
    with pytest.raises(ImageError, match="too large"):
        load_image(tmp_path / "a.png", max_decode_pixels=100_000)


def test_huge_png_is_refused_without_decoding(tmp_path):
    # headers of a 20000x20000 PNG (400 Mpx) followed by a few bytes of data
    (tmp_path / "bomb.png").write_bytes(_png(20000, 20000, 8, 2, b"\x00" * 100))
    with pytest.raises(ImageError, match="too large"):
        load_image(tmp_path / "bomb.png")


def test_huge_jpeg_is_decoded_shrunk_in_little_memory(tmp_path):
    path = tmp_path / "huge.jpg"
    _huge_constant_jpeg(path, 20000, 20000)
    # a fresh interpreter, so its peak memory is this load's: a full-size decode would need 400 MB
    # for the greyscale pixels alone, and 4.8 GB as float32 RGB
    code = ("import resource; from facerecon.io.images import load_image; "
            "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024; before = peak(); "
            f"a = load_image({str(path)!r}); "
            "print(a.shape[0], a.shape[1], float(a.min()), float(a.max()), peak() - before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    h, w, lo, hi, extra_mb = out.stdout.split()
    assert int(h) * int(w) <= MAX_PIXELS and int(h) == int(w) >= 2000
    assert abs(float(lo) - 128 / 255) < 0.01 and abs(float(hi) - 128 / 255) < 0.01
    # decoded at 1/8 scale: 2500x2500 float32 RGB is 75 MB
    assert int(extra_mb) < 250


def _jpeg_with_exif(path, size_wh=(600, 400), **exif_tags) -> None:
    exif = Image.Exif()
    ifd = exif.get_ifd(0x8769)
    for tag, value in exif_tags.items():
        ifd[int(tag[1:], 16)] = value
    Image.new("RGB", size_wh, (90, 120, 150)).save(path, "JPEG", exif=exif)


def test_exif_focal_from_the_35mm_equivalent(tmp_path):
    p = tmp_path / "f35.jpg"
    _jpeg_with_exif(p, t0xA405=28)  # FocalLengthIn35mmFilm
    focal, source = exif_focal_px(p, (400, 600))
    assert source == "FocalLengthIn35mmFilm"
    assert focal == pytest.approx(28 / 36 * 600)  # a 3:2 image: the diagonal rule is f35 / 36 * W
    half, _ = exif_focal_px(p, (200, 300))  # the photo loaded at half size
    assert half == pytest.approx(focal / 2)


def test_exif_focal_from_focal_length_and_sensor_resolution(tmp_path):
    from PIL.TiffImagePlugin import IFDRational

    p = tmp_path / "fl.jpg"
    # 4.2 mm lens, 1000 pixels per cm on the focal plane (unit 3 = cm), for a 600 px wide original
    _jpeg_with_exif(p, t0x920A=IFDRational(42, 10), t0xA20E=IFDRational(1000, 1), t0xA210=3, t0xA002=600, t0xA003=400)
    focal, source = exif_focal_px(p, (400, 600))
    assert source == "FocalLength+FocalPlaneXResolution"
    assert focal == pytest.approx(4.2 * 100)
    assert exif_focal_px(p, (300, 200))[0] == pytest.approx(4.2 * 100 / 2)  # rotated and shrunk


@pytest.mark.parametrize("tags", [{}, {"t0x920A": 4.2}, {"t0xA405": 0}])
def test_exif_focal_absent_is_none(tmp_path, tags):
    p = tmp_path / "none.jpg"
    _jpeg_with_exif(p, **tags)
    assert exif_focal_px(p, (400, 600)) is None
    png = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(png)
    assert exif_focal_px(png, (8, 8)) is None


def test_check_image_file_reads_only_the_header(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(_rgb()).save(good)
    check_image_file(good)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    with pytest.raises(ImageError, match="not an image"):
        check_image_file(text)
    with pytest.raises(ImageError, match="file not found"):
        check_image_file(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="not a file"):
        check_image_file(tmp_path)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        check_image_file(empty)
    broken = tmp_path / "broken.png"
    data = bytearray(good.read_bytes())
    data[-13] ^= 0xFF  # the last byte of the IDAT chunk's CRC (IEND is the last 12 bytes)
    broken.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="corrupt"):
        check_image_file(broken)
