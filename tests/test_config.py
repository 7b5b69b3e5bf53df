"""Configuration in one place: the settings' fields give the variables, the parsing, the checks
and the README's table; ``aimg doctor`` checks a configuration against its services."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aimg_app.cli import readme_with_table
from aimg_app.config import DOCS, env_name, load_settings, setting_types
from tests.ops_support import ROOT, clean_env


def test_the_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    assert readme == readme_with_table(readme), "README.md is out of date: run `aimg settings --write-readme`"


def test_every_setting_is_documented_and_reachable_from_the_environment():
    assert set(DOCS) == set(setting_types())
    for name in ("otp_ttl_hours", "otp_max_attempts"):
        assert getattr(load_settings({env_name(name): "7"}), name) == 7


def _toml(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "aimg.toml"
    path.write_text(text)
    return {"AIMG_CONFIG_FILE": str(path)}


def test_the_file_is_checked_like_the_environment(tmp_path):
    env = _toml(tmp_path, 'comfyui_prompt_timeout_s = "soon"\ntrusted_proxy_count = -3\nlog_level = "chatty"\n')
    with pytest.raises(ValueError) as raised:
        load_settings(env)
    message = str(raised.value)
    for part in ("comfyui_prompt_timeout_s in", "'soon'", "trusted_proxy_count in", "-3", "log_level in"):
        assert part in message
    with pytest.raises(ValueError, match="AIMG_TRUSTED_PROXY_COUNT: must not be negative"):
        load_settings({"AIMG_TRUSTED_PROXY_COUNT": "-3"})
    with pytest.raises(ValueError, match="AIMG_COMFYUI_PROMPT_TIMEOUT_S: expected a number"):
        load_settings({"AIMG_COMFYUI_PROMPT_TIMEOUT_S": "soon"})
    with pytest.raises(ValueError, match="AIMG_PGQUERY_ALLOW_WRITE: expected true or false"):
        load_settings({"AIMG_PGQUERY_ALLOW_WRITE": "perhaps"})


def test_the_file_and_the_environment_give_the_same_values(tmp_path):
    from_file = load_settings(_toml(tmp_path, 'comfyui_urls = ["http://a:1/", "http://b:2"]\n'
                                              'pgquery_allow_write = true\ngeneration_lease_s = 12\n'
                                              'admin_keys = { alice = "k1" }\n'))
    from_env = load_settings({"AIMG_COMFYUI_URLS": "http://a:1/, http://b:2", "AIMG_PGQUERY_ALLOW_WRITE": "yes",
                              "AIMG_GENERATION_LEASE_S": "12", "AIMG_ADMIN_KEYS": "alice:k1"})
    for name in ("comfyui_urls", "pgquery_allow_write", "generation_lease_s", "admin_keys"):
        assert getattr(from_file, name) == getattr(from_env, name)
    assert from_env.comfyui_urls == ("http://a:1", "http://b:2") and from_env.generation_lease_s == 12.0
    # the environment wins over the file
    assert load_settings({**_toml(tmp_path, "generation_lease_s = 12\n"), "AIMG_GENERATION_LEASE_S": "5"}
                         ).generation_lease_s == 5.0


def _doctor(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aimg_app", "doctor"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_doctor_reaches_every_service_and_names_the_one_down(services, tmp_path):
    env = clean_env(**{k: v for k, v in services.items() if k.startswith("AIMG_")})
    done = _doctor(env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "configuration  ok"
    for name in ("mongodb", "postgres", "redis", "files", "smtp"):
        assert any(line.startswith(name) and " ok " in line + " " for line in lines), done.stdout
    done = _doctor({**env, "AIMG_POSTGRES_DSN": "postgresql://u:p@127.0.0.1:1/aimg"})
    assert done.returncode == 1
    assert any(line.startswith("postgres") and "down" in line for line in done.stdout.splitlines()), done.stdout
    done = _doctor({**env, **_toml(tmp_path, "trusted_proxy_count = -3\n")})
    assert done.returncode == 2 and "configuration  invalid" in done.stdout and "-3" in done.stdout
