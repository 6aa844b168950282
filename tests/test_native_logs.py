"""Native log lines stay off the terminal; Python's own messages still show (subprocesses, so that
file descriptor 2 is a real pipe the test reads)."""
import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_the_block_silences_descriptor_2_but_not_python_s_stderr_and_nests():
    done = _run(
        "import os, sys\n"
        "from facerecon.native_logs import quiet_native_stderr\n"
        "with quiet_native_stderr():\n"
        "    os.write(2, b'native-outer\\n')\n"
        "    print('python-outer', file=sys.stderr, flush=True)\n"
        "    with quiet_native_stderr():\n"
        "        os.write(2, b'native-inner\\n')\n"
        "        print('python-inner', file=sys.stderr, flush=True)\n"
        "    os.write(2, b'native-after-inner\\n')\n"
        "os.write(2, b'native-after\\n')\n"
        "print('python-after', file=sys.stderr, flush=True)\n")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.split()
    assert lines == ["python-outer", "python-inner", "native-after", "python-after"]


def test_making_mediapipe_graphs_prints_no_native_log_lines():
    done = _run(
        "import sys\n"
        "from facerecon.landmarks import create_detector\n"
        "for threads in (1, 2):\n"
        "    det = create_detector('mediapipe', threads=threads)\n"
        "    det.close()\n"
        "from facerecon.landmarks.segmentation import PersonSegmenter\n"
        "PersonSegmenter().close()\n"
        "from facerecon.landmarks.face_landmarker import BlendshapeEstimator\n"
        "from facerecon.landmarks.task_file import task_file_installed\n"
        "if task_file_installed():\n"
        "    BlendshapeEstimator().close()\n"
        "from facerecon.tracking.landmarks import FaceLandmarkTracker\n"
        "FaceLandmarkTracker().close()\n"
        "print('made', file=sys.stderr)\n")
    assert done.returncode == 0, done.stderr
    assert done.stderr.split() == ["made"], done.stderr
