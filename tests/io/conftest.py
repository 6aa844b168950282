"""Every GLB an io test writes goes through the Khronos validator (zero errors, zero warnings),
except the ones a test breaks on purpose (named broken*.glb)."""
from __future__ import annotations

import pytest

from ..browser.ecosystem import assert_khronos_valid


@pytest.fixture(autouse=True)
def khronos_validated(tmp_path):
    yield
    for path in sorted(tmp_path.rglob("*.glb")):
        if not path.name.startswith("broken"):
            assert_khronos_valid(path)
