"""Uploads checked by content: format, pixel count from the header, truncation, emptiness."""
from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from facerecon.server.uploads import UploadRejected, check_upload


def _jpeg(w=64, h=48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (120, 80, 60)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h pixels, with one tiny (wrong) data chunk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def _check(tmp_path, data: bytes, max_pixels=10_000_000):
    p = tmp_path / "upload"
    p.write_bytes(data)
    return check_upload(p, "photo.x", max_pixels)


def test_formats_are_recognised_by_content(tmp_path):
    assert _check(tmp_path, _jpeg()) == ".jpg"
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, "PNG")
    assert _check(tmp_path, buf.getvalue()) == ".png"


@pytest.mark.parametrize("data, status, words", [
    (b"", 400, "empty"),
    (b"<html>not a photo</html>", 415, "not an image"),
    (_jpeg(400, 300)[:1500], 400, "truncated"),
    (png_header_only(8000, 8000), 413, "Mpx"),
    (png_header_only(200000, 200000), 413, "too large"),
])
def test_bad_uploads_are_refused_with_a_status_and_a_reason(tmp_path, data, status, words):
    with pytest.raises(UploadRejected) as info:
        _check(tmp_path, data)
    assert info.value.status == status and words in str(info.value)
    assert "photo.x" in str(info.value) or status == 413


def test_an_unsupported_format_is_415(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, "GIF")
    with pytest.raises(UploadRejected) as info:
        _check(tmp_path, buf.getvalue())
    assert info.value.status == 415 and "GIF" in str(info.value)


def test_the_pixel_limit_is_the_servers(tmp_path):
    with pytest.raises(UploadRejected) as info:
        _check(tmp_path, _jpeg(200, 100), max_pixels=19_999)
    assert info.value.status == 413 and "200x100" in str(info.value)
