"""AIMG back-end: the Flask application factory."""
from __future__ import annotations

import logging
import time

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Settings, load_settings
from .jsonlog import configure_logging, request_id_var

log = logging.getLogger("aimg.request")


def create_app(settings: Settings | None = None, extra_plugins=()) -> Flask:
    """Build the application. ``extra_plugins`` are registered beside the entry-point ones
    (tests use it for throwaway plugins)."""
    from . import context, metrics
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
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        JSON_SORT_KEYS=False,
        RATELIMIT_STORAGE_URI=settings.redis_url or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
    )
    if settings.trusted_proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_count,
                                x_proto=settings.trusted_proxy_count, x_host=settings.trusted_proxy_count)

    resources = Resources(settings, extra_plugins)
    app.extensions["aimg"] = resources
    if settings.mongodb_uri:
        resources.connect_mongo()
    if settings.migrate_on_start:
        resources.migrate()

    register_error_handlers(app)
    limiter.init_app(app)
    api = register_api(app)
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
