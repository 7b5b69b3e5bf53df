"""Test support for operations: ``aimg`` commands as real processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def aimg(*args, env: dict, cwd=None, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen([sys.executable, "-m", "aimg_app", *args], env=env, cwd=cwd or ROOT,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    finally:
        if log:
            out.close()


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception:  # noqa: BLE001 - not there yet
            pass
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {proc.returncode}\n{log.read_text() if log else ''}")
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s\n{log.read_text()[-3000:] if log else ''}")


def answers(url: str) -> bool:
    return requests.get(url, timeout=2).status_code < 500


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 30) -> float:
    """Seconds from the signal to the process's exit."""
    started = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    return time.monotonic() - started


def processes_of(data_dir: Path) -> list[dict]:
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "cmdline", "cwd"]):
        if str(data_dir) in " ".join(p.info["cmdline"] or []):
            found.append(p.info)
    return found
