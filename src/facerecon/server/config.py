"""Every limit of the server in one place (`facerecon serve` uses the defaults)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerConfig:
    """Limits and sizes of the HTTP server.

    Attributes:
        workers: worker processes, each holding one model (jobs run one at a time per worker).
        queue_size: jobs that may wait for a worker; one more is answered 429 with Retry-After.
        max_upload_bytes: the whole request body (413 above it).
        max_images: photos per job.
        max_pixels: width x height of one photo, read from its header before any decoding (413
            above it: the decompression-bomb guard).
        job_timeout_s: a job running longer is stopped (its worker process is killed and replaced)
            and fails with that reason. The first job of a worker includes its model load.
        result_ttl_s: a finished job's files are deleted this long after it finished.
        max_disk_bytes: the data folder's bound: the oldest finished jobs are deleted to make room,
            and an upload that still does not fit is answered 503 with Retry-After.
        result_bytes_per_image: room reserved for each photo's result files (about 14 MB for ICT)
            while its job is waiting or running; the real size replaces it once the job finished.
        data_dir: where jobs are kept (None: a new temporary folder, removed at shutdown).
        model: the model each worker loads.
    """

    workers: int = 1
    queue_size: int = 8
    max_upload_bytes: int = 20 * 1024 * 1024
    max_images: int = 8
    max_pixels: int = 50_000_000
    job_timeout_s: float = 600.0
    result_ttl_s: float = 3600.0
    max_disk_bytes: int = 2 * 1024 ** 3
    result_bytes_per_image: int = 24 * 1024 * 1024
    data_dir: Path | None = None
    model: str = "ict"
