import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_mediapipe_imports_without_matplotlib_and_matplotlib_still_works_after():
    out = _run("""
        import sys
        from facerecon.landmarks.mediapipe_import import import_mediapipe
        mp = import_mediapipe()
        from mediapipe.python.solutions.face_mesh import FaceMesh
        print("loaded", "matplotlib" in sys.modules, "matplotlib.pyplot" in sys.modules)
        from mediapipe.python.solutions import drawing_utils
        import matplotlib.pyplot as plt
        print("real", type(plt).__name__, plt.__file__.endswith("pyplot.py"))
        print("forwarded", drawing_utils.plt.figure is plt.figure)
    """)
    assert "loaded False False" in out
    assert "real module True" in out
    assert "forwarded True" in out


def test_with_matplotlib_already_imported_nothing_is_replaced():
    out = _run("""
        import matplotlib.pyplot as plt
        from facerecon.landmarks.mediapipe_import import import_mediapipe
        import_mediapipe()
        from mediapipe.python.solutions import drawing_utils
        print("same", drawing_utils.plt is plt)
    """)
    assert "same True" in out


def test_sounddevice_is_not_tried_during_the_import_and_importable_after():
    out = _run("""
        import sys
        import builtins
        tried = []
        real_import = builtins.__import__
        def spy(name, *args, **kwargs):
            if name == "sounddevice":
                tried.append(sys.modules.get(name, "absent"))
            return real_import(name, *args, **kwargs)
        builtins.__import__ = spy
        from facerecon.landmarks.mediapipe_import import import_mediapipe
        import_mediapipe()
        from mediapipe.tasks.python.audio.core import audio_record
        print("during", tried, "recording", audio_record.sd)
        print("after", "sounddevice" in sys.modules)
        try:
            import sounddevice
            print("later", "imported")
        except OSError:
            print("later", "imported, no PortAudio")
        except ImportError as exc:
            print("later", "not blocked" if "None in sys.modules" not in str(exc) else "still blocked")
    """)
    assert "during [None] recording None" in out
    assert "after False" in out
    assert "still blocked" not in out
