"""One blueprint module per chapter of the contract, each exposing ``blp``.

Modules of this package that define ``blp`` are registered in name order, so a new
chapter needs no registration here.
"""
from __future__ import annotations

import importlib
import pkgutil

from flask import Flask

from .base import Api


def chapters() -> list:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "blp"):
            found.append(module)
    return found


def register_api(app: Flask) -> Api:
    from .openapi import ContractDocPlugin

    api = Api(app, spec_kwargs={
        "info": {"description": "The AIMG Back-End API. Every JSON answer is the envelope "
                                "{hasError, errorMessage?, errorCode?, payload, metadata?}."},
        "extra_plugins": [ContractDocPlugin(app)],
    })
    for chapter in chapters():
        api.register_blueprint(chapter.blp)
    return api
