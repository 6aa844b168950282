"""The HTTP API and the viewer (`create_app`). OpenAPI at /openapi.json, docs at /docs.

    POST   /v1/reconstructions                       multipart: `image` (one or more files), `mode`
                                                     -> 202 {id, status, ...}, Location: the job's URL
    GET    /v1/reconstructions/{id}                  status, progress, faces and their file links
    GET    /v1/reconstructions/{id}/faces/{k}/{file} mesh.glb, mesh.obj, mesh.mtl, albedo.png, mesh.ply,
                                                     params.json, overlay.png, landmarks.json
    DELETE /v1/reconstructions/{id}                  a finished job and its files
    GET    /v1/meta, /v1/health                      modes, ARKit names, limits; queue and disk use
    GET    /                                         the viewer (static files built from web/)

Refusals are 4xx with {"detail": why}: 400 malformed / empty / truncated upload, too many files;
413 body or pixels over the limit; 415 not multipart, or not an image by content; 422 bad `mode` or
no `image`; 404 unknown or expired id; 429 queue full and 503 disk full, both with Retry-After.
"""
from __future__ import annotations

import shutil
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from .. import __version__
from .config import ServerConfig
from .storage import DONE, Job, JobStore, StorageFull
from .uploads import UploadRejected, check_upload
from .workers import JobRunner, QueueFull, WorkerPool

STATIC = Path(__file__).resolve().parent / "static"
MODES = ("fast", "full")
MEDIA_TYPES = {".glb": "model/gltf-binary", ".obj": "text/plain", ".mtl": "text/plain", ".ply": "application/octet-stream",
               ".png": "image/png", ".json": "application/json"}

_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["image"],
    "properties": {
        "image": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "one or more photos of one person (JPEG, PNG, WebP, BMP, TIFF; checked by content)"},
        "mode": {"type": "string", "enum": list(MODES), "default": "fast"}}}}}}}


class FaceOut(BaseModel):
    index: int
    image: int
    name: str
    files: dict[str, str]
    model_vertices: int
    pose_deg: list[float]
    landmark_rms_px: float
    quality: dict
    arkit: dict[str, float] | None = None


class JobOut(BaseModel):
    id: str
    url: str
    status: str
    mode: str
    images: int
    progress: float
    stage: str
    error: str | None = None
    note: str | None = None
    faces: list[FaceOut] = []
    errors: list[dict] = []
    created: float
    started: float | None = None
    finished: float | None = None
    expires_at: float | None = None


class Detail(BaseModel):
    detail: str


_ERRORS = {code: {"model": Detail} for code in (400, 404, 409, 413, 415, 422, 429, 503)}


class _BodyTooLarge(Exception):
    pass


def create_app(config: ServerConfig | None = None, runner: JobRunner | None = None) -> FastAPI:
    """The ASGI app. Its worker processes start (and load the model) when the app starts.

    Args:
        config: limits and sizes (`ServerConfig()` by default).
        runner: what the workers do (the real reconstruction by default; tests inject fakes).
    """
    config = config or ServerConfig()
    if runner is None:
        from .runner import RECONSTRUCT

        runner = RECONSTRUCT

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = JobStore(config.data_dir, config.result_ttl_s, config.max_disk_bytes)
        pool = WorkerPool(runner, config.model, config.workers, config.queue_size, config.job_timeout_s,
                          on_finished=store.finished)
        stop = threading.Event()
        sweeper = threading.Thread(target=_sweep_until, args=(store, stop, max(0.05, min(60.0, config.result_ttl_s / 4))),
                                   daemon=True, name="facerecon-sweeper")
        sweeper.start()
        app.state.store, app.state.pool = store, pool
        try:
            yield
        finally:
            stop.set()
            pool.close()
            store.close()

    app = FastAPI(title="facerecon", version=__version__, lifespan=lifespan,
                  description="3D face reconstruction from photos: upload, poll, download meshes.")

    def store(request: Request) -> JobStore:
        return request.app.state.store

    @app.post("/v1/reconstructions", status_code=202, response_model=JobOut, responses=_ERRORS,
              openapi_extra=_UPLOAD_BODY, summary="Start a reconstruction of one or more photos of one person")
    async def create_reconstruction(request: Request, response: Response) -> JobOut:
        ctype = request.headers.get("content-type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            raise HTTPException(415, f"send multipart/form-data with one or more `image` files, not {ctype or 'no content type'}")
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > config.max_upload_bytes):
            raise HTTPException(413 if length.isdigit() else 400,
                                f"the upload is {length} bytes; the server accepts at most {config.max_upload_bytes}")
        pool: WorkerPool = request.app.state.pool
        try:
            pool.check_room()  # before reading the body: a full queue costs the client nothing
        except QueueFull as exc:
            raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
        limited = Request(request.scope, _limit_body(request.receive, config.max_upload_bytes))
        try:
            form = await limited.form(max_files=config.max_images, max_fields=8)
        except _BodyTooLarge:
            raise HTTPException(413, f"the upload is over {config.max_upload_bytes} bytes") from None
        except HTTPException as exc:  # Starlette's multipart errors (malformed, too many files)
            raise HTTPException(400, str(exc.detail)) from None
        except ClientDisconnect:
            raise HTTPException(400, "the client disconnected during the upload") from None
        try:
            return await _accept(request, response, form, pool)
        finally:
            await form.close()

    async def _accept(request: Request, response: Response, form, pool: WorkerPool) -> JobOut:
        mode = form.get("mode", "fast")
        if mode not in MODES:
            raise HTTPException(422, f"mode must be one of {', '.join(MODES)}, got {str(mode)[:40]!r}")
        files = form.getlist("image")
        if not files:
            raise HTTPException(422, "no `image` file in the upload")
        if not all(isinstance(f, UploadFile) for f in files):
            raise HTTPException(422, "every `image` field must be a file")
        jobs = store(request)
        try:
            job = jobs.create(mode, len(files), sum(f.size or 0 for f in files)
                              + len(files) * config.result_bytes_per_image)
        except StorageFull as exc:
            raise HTTPException(503, f"no disk room for new jobs: {exc}", headers={"Retry-After": "60"}) from None
        try:
            (job.folder / "inputs").mkdir()
            for k, f in enumerate(files):
                name = _display_name(f.filename, k)
                raw = job.folder / "inputs" / f"{k}.upload"
                with open(raw, "wb") as out:
                    await run_in_threadpool(shutil.copyfileobj, f.file, out)
                ext = await run_in_threadpool(check_upload, raw, name, config.max_pixels)
                final = raw.with_suffix(ext)
                raw.rename(final)
                job.inputs.append(str(final))
                job.names.append(name)
            pool.submit(job)
        except UploadRejected as exc:
            jobs.delete(job)
            raise HTTPException(exc.status, str(exc)) from None
        except QueueFull as exc:
            jobs.delete(job)
            raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
        except BaseException:
            jobs.delete(job)
            raise
        response.headers["Location"] = _job_url(job)
        return _job_out(job, config)

    @app.get("/v1/reconstructions/{job_id}", response_model=JobOut, responses=_ERRORS,
             summary="Status, progress and file links of a reconstruction")
    def get_reconstruction(job_id: str, request: Request) -> JobOut:
        return _job_out(_find(store(request), job_id), config)

    @app.get("/v1/reconstructions/{job_id}/faces/{index}/{name}", responses={**_ERRORS, 200: {
        "content": {t: {} for t in sorted(set(MEDIA_TYPES.values()))}}}, response_class=FileResponse,
        summary="One file of one reconstructed face")
    def get_file(job_id: str, index: int, name: str, request: Request) -> FileResponse:
        job = _find(store(request), job_id)
        if job.state != DONE:
            raise HTTPException(409, f"the reconstruction is {job.state}, it has no files")
        faces = job.result["faces"]
        if not 0 <= index < len(faces) or name not in faces[index]["files"]:
            raise HTTPException(404, "no such file")
        path = job.folder / "faces" / str(index) / name  # index and name are the job's own, never the client's
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"))

    @app.delete("/v1/reconstructions/{job_id}", status_code=204, responses=_ERRORS,
                summary="Delete a finished reconstruction and its files")
    def delete_reconstruction(job_id: str, request: Request) -> Response:
        job = _find(store(request), job_id)
        if not job.finished_state:
            raise HTTPException(409, f"the reconstruction is {job.state}; delete it once it finished")
        store(request).delete(job)
        return Response(status_code=204)

    @app.get("/v1/meta", summary="Modes, ARKit expression names and the server's limits")
    def meta() -> dict:
        from ..models.arkit import ARKIT_NAMES

        return {"version": __version__, "modes": list(MODES), "arkit_names": list(ARKIT_NAMES),
                "limits": {"max_upload_bytes": config.max_upload_bytes, "max_images": config.max_images,
                           "max_pixels": config.max_pixels, "job_timeout_s": config.job_timeout_s,
                           "result_ttl_s": config.result_ttl_s}}

    @app.get("/v1/health", summary="Queue length and disk use")
    def health(request: Request) -> dict:
        pool: WorkerPool = request.app.state.pool
        return {"status": "ok", "workers": pool.workers, "waiting": pool.waiting, "queue_size": pool.queue_size,
                "used_bytes": store(request).used_bytes(), "max_disk_bytes": config.max_disk_bytes}

    app.mount("/", StaticFiles(directory=STATIC, html=True), name="viewer")
    return app


def _find(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id)
    if job is None:
        raise HTTPException(404, "no such reconstruction (unknown id, or its result expired)")
    return job


def _job_url(job: Job) -> str:
    return f"/v1/reconstructions/{job.id}"


def _job_out(job: Job, config: ServerConfig) -> JobOut:
    result = job.result or {}
    base = _job_url(job)
    faces = [FaceOut(index=k, files={n: f"{base}/faces/{k}/{n}" for n in f["files"]},
                     **{key: f[key] for key in ("image", "name", "model_vertices", "pose_deg", "landmark_rms_px",
                                                "quality", "arkit")})
             for k, f in enumerate(result.get("faces", []))]
    return JobOut(id=job.id, url=base, status=job.state, mode=job.mode, images=job.images, progress=job.progress,
                  stage=job.stage, error=job.error, note=result.get("note"), faces=faces,
                  errors=result.get("errors", []), created=job.created, started=job.started, finished=job.finished,
                  expires_at=None if job.finished is None else job.finished + config.result_ttl_s)


def _display_name(filename: str | None, k: int) -> str:
    """The client's file name, for messages and the page only (never a path)."""
    name = Path(filename or "").name
    name = "".join(c for c in name if c.isprintable())[:120]
    return name or f"photo {k + 1}"


def _limit_body(receive, limit: int):
    """An ASGI `receive` that raises `_BodyTooLarge` once more than `limit` body bytes arrived."""
    seen = 0

    async def limited():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge
        return message

    return limited


def _sweep_until(store: JobStore, stop: threading.Event, every_s: float) -> None:
    while not stop.wait(every_s):
        store.sweep()
