"""Command-line interface: argument parsing only; the work is done by the library.

Exit codes: 0 ok, 1 internal error, 2 usage, 3 no face, 4 unreadable or missing input,
5 model missing or bad, 6 photos of different people (--same-person), 130 interrupted (SIGINT, Ctrl-C), 143 terminated (SIGTERM).

Nothing heavy is imported here: torch, MediaPipe and the model load only once a command needs
them, after its inputs were checked, so `--help` and a bad path answer at once.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import FaceReconError

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facerecon", description="3D face reconstruction from photos, on a CPU.")
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list, locate and fetch morphable models")
    msub = models.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="known models and where they were found")
    p = msub.add_parser("path", help="print the path of a model")
    p.add_argument("name")
    p = msub.add_parser("fetch", help="download (ICT) and convert a model into the cache")
    p.add_argument("name")
    p.add_argument("--from", dest="from_folder", help="convert a local ICT-FaceKit FaceXModel folder instead")

    p = sub.add_parser("landmarks", help="detect 478 MediaPipe and 68 iBUG landmarks in an image")
    p.add_argument("image")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--overlay", help="PNG with the landmarks drawn on the photo")
    p.add_argument("--backend", default="mediapipe", choices=["mediapipe", "dlib"])

    p = sub.add_parser("reconstruct", help="reconstruct a 3D face from one or more photos")
    p.add_argument("images", nargs="*", help="image files")
    p.add_argument("--example", choices=["astronaut"], help="use an example photo shipped by scikit-image")
    p.add_argument("-o", "--out", required=True, help="output folder (one subfolder per image when several)")
    p.add_argument("--mode", default="fast", choices=["fast", "full"])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--model", default="ict", help="model name or path")
    p.add_argument("--max-faces", type=int, default=1)
    p.add_argument("--offline", action="store_true", help="never download a model")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--skip-existing", action="store_true",
                   help="skip images whose output folder already holds params.json (continue a stopped run)")
    p.add_argument("--same-person", action="store_true", help="the photos show one person: fit one shared face")
    p.add_argument("--detail", action="store_true",
                   help="also fit fine detail (full mode): displacement.png, normals.png, uncertainty.ply/.png, extras.json")
    p.add_argument("--metric", action="store_true",
                   help="also estimate the absolute scale from the iris (extras.json metric_scale, metric_scale_std)")

    p = sub.add_parser("track", help="track a face through a video: ARKit curves, animated glTF, preview")
    p.add_argument("video")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--model", default="ict", help="model name or path")
    p.add_argument("--smoothing", default="rts", choices=["rts", "term", "one_euro", "none"],
                   help="rts: forward-backward smoother, no lag (default); term: temporal term in the fit; "
                        "one_euro: causal filter; none")
    p.add_argument("--no-preview", action="store_true", help="skip preview.mp4 (it renders every frame)")
    p.add_argument("--offline", action="store_true", help="never download a model")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")

    p = sub.add_parser("retarget", help="apply a track's expressions and head motion to another reconstruction")
    p.add_argument("--source", required=True, help="output folder of `facerecon track`")
    p.add_argument("--target", required=True, help="output folder of `facerecon reconstruct`")
    p.add_argument("-o", "--out", required=True, help="animated GLB to write")

    p = sub.add_parser("batch", help="reconstruct every photo in a folder (resumable; local processes or Ray)")
    p.add_argument("input_dir")
    p.add_argument("-o", "--out", required=True, help="output folder: one subfolder per photo, manifest.json")
    p.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    p.add_argument("--mode", default="fast", choices=["fast", "full"])
    p.add_argument("--model", default="ict", help="model name or path")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run on Ray: a new local cluster, or the cluster at ADDRESS")

    p = sub.add_parser("serve", help="the web app and HTTP API (FastAPI + uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="worker processes, each with its own model")

    ev = sub.add_parser("eval", help="accuracy evaluation")
    esub = ev.add_subparsers(dest="eval_command", required=True)
    p = esub.add_parser("now", help="NoW-protocol scan-to-mesh error of predicted meshes against scans")
    p.add_argument("--pred", required=True)
    p.add_argument("--gt", required=True)
    p.add_argument("--metrical", action="store_true", help="NoW metrical variant: no scale in the alignment")
    p.add_argument("--json", action="store_true")
    p = esub.add_parser("synthetic", help="generate synthetic faces, reconstruct and score them")
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", default="fast", choices=["fast", "full"])
    p.add_argument("--off-model", action="store_true", help="faces the model cannot represent exactly")
    p.add_argument("--out", help="keep the generated set in this folder")
    p.add_argument("--landmarks", default="detector", choices=["detector", "gt"],
                   help="fit to MediaPipe's detections (default) or to the ground-truth points")
    p.add_argument("--metrical", action="store_true", help="NoW metrical variant: no scale in the alignment")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    # MediaPipe's native (glog/absl) warnings are noise for a CLI user; set before it is imported
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    from .commands import quiet_native_stderr

    try:
        with quiet_native_stderr():
            return _dispatch(args)
    except FaceReconError as exc:
        print(f"facerecon: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a write no command turned into OutputError (a full disk mid-run)
        from .commands.outputs import WRITE_ERRNOS, output_error

        if exc.errno not in WRITE_ERRNOS:
            raise
        err = output_error(exc)
        print(f"facerecon: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("facerecon: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "models":
        return _models(args)
    if args.command == "landmarks":
        from .commands.landmarks import landmarks_command

        return landmarks_command(args.image, args.out, args.overlay, backend=args.backend)
    if args.command == "reconstruct":
        from .commands.reconstruct import reconstruct_command

        images = ([args.example] if args.example else []) + list(args.images)
        if args.detail and args.mode != "full":
            print("facerecon: warning: --detail needs --mode full (the fitted light and albedo): no displacement "
                  "map is written (params.json / person.json say why)", file=sys.stderr)
        if args.same_person:
            from .commands.person import person_command

            if args.metric:
                print("facerecon: warning: --metric is for single photos; the --same-person result stays at the "
                      "model's scale", file=sys.stderr)
            return person_command(images, args.out, args.mode, args.device, args.model, args.offline, args.json,
                                  detail=args.detail)
        return reconstruct_command(images, args.out, mode=args.mode, device=args.device, model=args.model,
                                   max_faces=args.max_faces, offline=args.offline, as_json=args.json,
                                   skip_existing=args.skip_existing, detail=args.detail, metric=args.metric)
    if args.command == "track":
        from .commands.track import track_command

        return track_command(args.video, args.out, model=args.model, smoothing=args.smoothing,
                             preview=not args.no_preview, offline=args.offline, as_json=args.json)
    if args.command == "retarget":
        from .commands.retarget import retarget_command

        return retarget_command(args.source, args.target, args.out)

    if args.command == "batch":
        from .commands.batch import batch_command

        return batch_command(args.input_dir, args.out, workers=args.workers, mode=args.mode, model=args.model,
                             ray_address=args.ray)
    if args.command == "serve":
        from .server.serve import serve_command

        return serve_command(args.host, args.port, workers=args.workers)
    if args.command == "eval":
        if args.eval_command == "now":
            from .commands.evaluate import eval_now_command

            return eval_now_command(args.pred, args.gt, args.json, metrical=args.metrical)
        from .commands.evaluate import eval_synthetic_command

        return eval_synthetic_command(n=args.n, seed=args.seed, mode=args.mode, off_model=args.off_model,
                                      out=args.out, as_json=args.json, landmarks=args.landmarks,
                                      metrical=args.metrical)
    return EXIT_USAGE


def _models(args: argparse.Namespace) -> int:
    from .models import fetch_model, find_model, list_models
    from .models.manager import KNOWN_MODELS

    if args.models_command == "list":
        for entry, path in list_models():
            status = str(path) if path else "not found"
            print(f"{entry.name:9s} {status}\n          {entry.description}")
        return EXIT_OK
    if args.models_command == "path":
        if args.name not in KNOWN_MODELS:
            print(f"facerecon: error: unknown model {args.name!r}; known: {', '.join(KNOWN_MODELS)}", file=sys.stderr)
            return EXIT_USAGE
        path = find_model(args.name)
        if path is None:
            print(f"facerecon: error: model {args.name!r} not found; {KNOWN_MODELS[args.name].obtain}", file=sys.stderr)
            return 5
        print(path)
        return EXIT_OK
    if args.from_folder:
        from .models.ict import NPZ_NAME, load_ict_folder, save_ict_npz
        from .models.manager import cache_dir

        if args.name != "ict":
            print("facerecon: error: --from converts an ICT-FaceKit folder only", file=sys.stderr)
            return EXIT_USAGE
        target = cache_dir() / KNOWN_MODELS["ict"].folder / NPZ_NAME
        save_ict_npz(load_ict_folder(Path(args.from_folder), require_complete=True), target)
        print(target)
        return EXIT_OK
    print(fetch_model(args.name, progress=lambda f: print(f"downloading {f}", file=sys.stderr)))
    return EXIT_OK


def run() -> None:
    """The console entry point (`facerecon`, `python -m facerecon.cli`): `main()`, then the process
    ends without tearing the interpreter down.

    Every command has written and closed its outputs, shut its worker processes and Ray down and
    restored stderr before `main` returns; what is left is the interpreter's own clean-up of torch,
    MediaPipe and numba, which took 0.5-0.9 s of a 4.7 s fast-mode run on this project's CPU
    (`benchmarks/bench_cli.py`). An exception that escapes `main` still ends the normal way, with
    its traceback.
    """
    code = main()
    if "logging" in sys.modules:  # flush any handler a library set up
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`facerecon ... | head`): nothing more to say
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
