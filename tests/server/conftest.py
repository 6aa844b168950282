"""The server's tests need the optional extra `facerecon[server]`: skipped without it, except in CI
(FACERECON_REQUIRE_ECOSYSTEM=1, where .ci/run installs it) where that is a failure."""
import importlib.util

import pytest

from ..browser.ecosystem import required

_MISSING = [m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]


def pytest_collection_modifyitems(config, items):
    if not _MISSING:
        return
    reason = f"the server extra is not installed ({', '.join(_MISSING)}): pip install 'facerecon[server]'"
    if required():
        raise pytest.UsageError(reason)
    for item in items:
        if "tests/server/" in str(item.fspath):
            item.add_marker(pytest.mark.skip(reason=reason))
