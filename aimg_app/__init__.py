"""AIMG back-end: the Flask application factory."""
from __future__ import annotations

import logging
import time

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Settings, load_settings
from .jsonlog import configure_logging, request_id_var

log = logging.getLogger("aimg.request")


# Headers a browser front-end sends, and those it may read from our answers.
CORS_REQUEST_HEADERS = ("Content-Type", "X-Session-ID", "X-Administration-Key", "Idempotency-Key", "X-Request-ID",
                        "Last-Event-ID")
CORS_EXPOSED_HEADERS = ("X-Request-ID", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                        "X-RateLimit-Reset", "Content-Disposition")
CORS_MAX_AGE_S = 600


DOCS_ASSETS_PATH = "docs/assets"


def _serve_docs_assets(app: Flask) -> None:
    from flask import send_from_directory
    from swagger_ui_bundle import swagger_ui_path

    def docs_asset(filename: str):
        return send_from_directory(swagger_ui_path, filename, max_age=86400)

    app.add_url_rule(f"/{DOCS_ASSETS_PATH}/<path:filename>", "docs_asset", docs_asset, methods=["GET"])


def _enable_cors(app: Flask, settings: Settings) -> None:
    """Browsers may call the API from the configured front-end origins only; sessions travel in
    ``X-Session-ID``, never in cookies, so no credentials mode is offered."""
    from flask_cors import CORS

    origins = sorted({origin for domain in settings.domains for origin in domain.origins})
    CORS(app, origins=origins, allow_headers=list(CORS_REQUEST_HEADERS), expose_headers=list(CORS_EXPOSED_HEADERS),
         max_age=CORS_MAX_AGE_S, supports_credentials=False, vary_header=True)


def create_app(settings: Settings | None = None, extra_plugins=()) -> Flask:
    """Build the application. ``extra_plugins`` are registered beside the entry-point ones
    (tests use it for throwaway plugins)."""
    from . import context, metrics
    from .admin import register_admin
    from .api import register_api
    from .api.health import health_bp
    from .envelope import register_error_handlers
    from .ratelimit import limiter
    from .resources import Resources

    settings = settings or load_settings()
    configure_logging(settings.log_level)
    app = Flask("aimg_app")
    app.config.update(
        API_TITLE="AIMG Back-End API",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Swagger UI from the installed swagger-ui-bundle package: /docs works with no network.
        OPENAPI_SWAGGER_UI_URL=f"/{DOCS_ASSETS_PATH}/",
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None, "persistAuthorization": True,
                                   "displayOperationId": True, "tryItOutEnabled": True},
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        JSON_SORT_KEYS=False,
        RATELIMIT_STORAGE_URI=settings.redis_url or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
    )
    if settings.trusted_proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_count,
                                x_proto=settings.trusted_proxy_count, x_host=settings.trusted_proxy_count)

    resources = Resources(settings, extra_plugins)
    resources.collect_plugins()
    app.extensions["aimg"] = resources
    if settings.mongodb_uri:
        resources.connect_mongo()
    if settings.migrate_on_start:
        resources.migrate()

    register_error_handlers(app)
    _enable_cors(app, settings)
    limiter.init_app(app)
    api = register_api(app)
    register_admin(app)
    _serve_docs_assets(app)
    limiter.exempt(health_bp)
    app.register_blueprint(health_bp)
    for blueprints in resources.plugins.hook.register_blueprints():
        for blueprint in blueprints or []:
            app.register_blueprint(blueprint)
    app.extensions["aimg_api"] = api

    @app.before_request
    def _start():
        request.environ["aimg.started"] = time.perf_counter()
        request_id_var.set(context.request_id())
        if request.blueprint == health_bp.name:
            return None  # balancers and scrapers: no session, no domain
        # An admin-only endpoint refuses a non-admin before anything of the request is read.
        if getattr(app.view_functions.get(request.endpoint), "aimg_admin_only", False):
            context.require_admin()
        # A malformed X-Session-ID is refused on every endpoint, whether it uses the session or not.
        context.session_id_header()

    @app.after_request
    def _finish(response):
        rid = context.request_id()
        response.headers["X-Request-ID"] = rid
        elapsed = (time.perf_counter() - request.environ.get("aimg.started", time.perf_counter())) * 1000
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.REQUESTS.labels(rule, request.method, str(response.status_code)).inc()
        metrics.LATENCY.labels(rule).observe(elapsed / 1000)
        if rule.startswith("/webhooks/") and request.view_args:
            metrics.WEBHOOKS.labels(str(request.view_args.get("processor_id", "")),
                                    "accepted" if response.status_code < 400 else str(response.status_code)).inc()
        if request.blueprint == health_bp.name:
            return response
        log.info("%s %s %s", request.method, request.path, response.status_code,
                 extra={"method": request.method, "path": request.path, "status": response.status_code,
                        "durationMs": round(elapsed, 1), "domain": context.domain().identifier})
        return response

    @app.teardown_request
    def _clear(_exc):
        request_id_var.set(None)

    return app
