"""`create_app(settings)`: the gallery's FastAPI app, its safety headers, rate limit and error pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from db.session import make_engine, make_sessionmaker
from sojourn.errors import UserError
from sojourn.settings import Settings
from sojourn.storage import make_storage
from web.ratelimit import TokenBuckets
from web.routes import api, gallery, images, jobs

HERE = Path(__file__).resolve().parent
# No inline script or style anywhere: the copy button's script is web/static/copy.js. Images come
# from here, but for members' avatars, from Discord's CDN (`sojourn.services.profiles` keeps no other).
CSP = (
    "default-src 'none'; img-src 'self' https://cdn.discordapp.com https://media.discordapp.net; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's API docs load Swagger UI from its CDN and start it with an inline script; they show
# no user content.
DOCS_CSP = (
    "default-src 'none'; img-src 'self' data: https://fastapi.tiangolo.com; "
    "style-src 'self' https://cdn.jsdelivr.net; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
SAFETY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def create_app(settings: Settings) -> FastAPI:
    """The gallery on `settings`' database and image folder; it opens the database at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url)
        app.state.sessions = make_sessionmaker(engine)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="sojourn gallery",
        description="Public results of a sojourn bot, read-only.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.storage = make_storage(settings)
    app.state.templates = Jinja2Templates(
        env=jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,  # every prompt is someone's text: it is shown, never parsed
            undefined=jinja2.StrictUndefined,
        )
    )
    app.state.templates.env.globals["public_url"] = (settings.web.public_url or "").rstrip("/")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in (gallery.router, jobs.router, images.router, api.router):
        app.include_router(router)
    _add_error_pages(app)
    _add_rate_limit_and_headers(app, TokenBuckets(settings.web.requests_per_minute, settings.web.burst))
    return app


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )


def _add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(UserError)
    async def user_error(request: Request, error: UserError) -> Response:
        return _error(request, 400, error.message)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, error: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'][1:])}: {problem['msg']}"
            for problem in error.errors()
        )
        return _error(request, 400, f"Check the address: {problems}.")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        if error.status_code == 404:
            return _error(request, 404, "Nothing here: it may have been removed, or made private.")
        return _error(request, error.status_code, str(error.detail))


def _add_rate_limit_and_headers(app: FastAPI, buckets: TokenBuckets) -> None:
    @app.middleware("http")
    async def rate_limit_and_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        address = request.client.host if request.client else "unknown"
        wait = buckets.take(address)
        if wait > 0:
            response: Response = PlainTextResponse(
                "Too many requests from your address: wait a moment and reload.",
                status_code=429,
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        else:
            response = await call_next(request)
        response.headers.update(SAFETY_HEADERS)
        docs = request.url.path in DOCS_PATHS
        response.headers["Content-Security-Policy"] = DOCS_CSP if docs else CSP
        return response
