"""The local web app and HTTP API (`facerecon serve`): FastAPI + uvicorn, a bounded pool of worker
processes (one model each), results on disk that expire, and the viewer's built static files.

    from facerecon.server import ServerConfig, create_app
    app = create_app(ServerConfig(workers=1))      # an ASGI app: uvicorn.run(app, host="127.0.0.1")

Modules: `config` (every limit), `storage` (job folders, ids, expiry, disk bound), `uploads`
(checks by content), `workers` (the pool: timeouts, a crashed worker replaced), `runner` (what a
worker does: photos -> result folders), `app` (the routes), `serve` (the command). Nothing here is imported by the layers
below; it needs the optional extra `facerecon[server]`.
"""
__all__ = ["ServerConfig", "create_app"]


def __getattr__(name: str):
    # imported on first use, so `facerecon serve` can say which extra is missing
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ServerConfig":
        from .config import ServerConfig

        return ServerConfig
    raise AttributeError(name)
