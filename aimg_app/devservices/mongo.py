"""A MongoDB-protocol server: mongoeco's wire proxy over one SQLite file."""
from __future__ import annotations

import sys

import pymongo

from .service import EmbeddedService, free_port

DATABASE = "aimg"


class MongoService(EmbeddedService):
    name = "mongodb"
    env_var = "AIMG_MONGODB_URI"
    requires = ("mongoeco",)

    def prepare(self) -> None:
        self.port = free_port()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "aimg_app.devservices.mongo_wire", "--port", str(self.port),
                "--path", str(self.data_dir / "aimg.sqlite3")]

    def ready(self) -> bool:
        client = pymongo.MongoClient(host="127.0.0.1", port=self.port, serverSelectionTimeoutMS=1000)
        try:
            return client.admin.command("ping").get("ok") == 1
        finally:
            client.close()

    def exports(self) -> dict[str, str]:
        return {"AIMG_MONGODB_URI": f"mongodb://127.0.0.1:{self.port}/{DATABASE}"}

    def describe(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/{DATABASE}  data: {self.data_dir / 'aimg.sqlite3'}"
