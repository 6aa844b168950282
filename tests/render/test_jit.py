"""Kernels compiled on first call: numba is not imported before, helpers and callers both compile."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _run(code: str) -> str:
    import os

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_renderer_does_not_import_numba_and_a_kernel_call_does():
    out = _run("""
        import sys
        import numpy as np
        import facerecon.render
        from facerecon.render import _zbuffer
        kernel = _zbuffer._zbuffer_kernel  # held by name, as another module would hold it
        print("after import", "numba" in sys.modules, repr(kernel).split(" (")[1])
        screen = np.array([[[1.0, 1.0, 2.0], [7.0, 1.0, 2.0], [1.0, 7.0, 2.0]]])
        tid = _zbuffer.zbuffer_numba(screen, np.array([[0, 1, 2]]), 8, 8, True, False, 0.01)
        print("after call", "numba" in sys.modules, int((tid >= 0).sum()) > 0)
        from numba.core.dispatcher import Dispatcher
        print("module global", isinstance(_zbuffer._zbuffer_kernel, Dispatcher), repr(kernel).split(" (")[1])
    """)
    assert "after import False not compiled yet)>" in out
    assert "after call True True" in out
    assert "module global True compiled)>" in out


def test_a_kernel_calling_an_inline_helper_compiles_through_the_lazy_wrapper(tmp_path):
    (tmp_path / "lazy_mod.py").write_text(textwrap.dedent("""
        from facerecon.render._jit import njit

        @njit(inline="always")
        def _twice(x):
            return 2.0 * x

        @njit()
        def total(a):
            s = 0.0
            for v in a:
                s += _twice(v)
            return s
    """))
    out = _run(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np
        from lazy_mod import total
        print("total", total(np.arange(4.0)), total.py_func(np.arange(4.0)))
    """)
    assert "total 12.0 12.0" in out


def test_the_wrapper_keeps_the_function_s_name_and_runs_in_process():
    from facerecon.render._jit import LazyKernel, njit

    @njit(cache=False)
    def plus_one(a):
        return a + 1

    assert isinstance(plus_one, LazyKernel) and plus_one.__name__ == "plus_one"
    np.testing.assert_array_equal(plus_one(np.arange(3)), [1, 2, 3])
    assert plus_one.dispatcher is plus_one.dispatcher
