"""One blueprint module per chapter of the contract."""
from __future__ import annotations

from flask import Flask

from . import technical, users
from .base import Api

CHAPTERS = (users, technical)


def register_api(app: Flask) -> Api:
    api = Api(app, spec_kwargs={
        "info": {"description": "The AIMG Back-End API. Every JSON answer is the envelope "
                                "{hasError, errorMessage?, errorCode?, payload, metadata?}."},
        "components": {"securitySchemes": {
            "session": {"type": "apiKey", "in": "header", "name": "X-Session-ID"},
            "adminKey": {"type": "apiKey", "in": "header", "name": "X-Administration-Key"},
        }},
    })
    for chapter in CHAPTERS:
        api.register_blueprint(chapter.blp)
    return api
