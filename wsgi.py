"""WSGI entry point: ``gunicorn wsgi:app``. Settings come from the AIMG_* environment."""
from aimg_app import create_app

app = create_app()
