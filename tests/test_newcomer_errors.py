"""What newcomers get wrong is answered in one clear sentence."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import assert_error, new_session_headers


def test_a_form_body_on_a_json_endpoint_asks_for_json(client):
    response = client.post("/createUser", data={"email": "a@example.com", "password": "x"},
                           headers=new_session_headers())
    assert_error(response, 415, "application/json")


def test_a_text_body_on_a_json_endpoint_asks_for_json(client):
    response = client.post("/setUserKVP", data='{"key": "k", "value": "v"}', content_type="text/plain",
                           headers=new_session_headers())
    assert_error(response, 415, "application/json")


def test_an_empty_body_is_still_a_validation_error(client):
    assert_error(client.post("/createUser", headers=new_session_headers()), 400, "email")


@pytest.mark.parametrize("command", [["fake-comfyui"], ["serve"]])
def test_a_busy_port_is_one_line_naming_the_port_and_the_setting(command, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
        env["AIMG_DATA_DIR"] = str(tmp_path)
        done = subprocess.run([sys.executable, "-m", "aimg_app", *command, "--port", str(port)], env=env,
                              capture_output=True, text=True, timeout=60)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 2
    assert "Traceback" not in output and len(output.splitlines()) == 1, output
    assert str(port) in output and "--port" in output


def test_a_generation_queued_with_no_worker_says_so(app, client, user):
    from tests.generation_support import clear_generation_queues

    clear_generation_queues(app)
    app.extensions["aimg"].redis.delete("aimg:workers")  # no worker of an earlier test counts
    queued = client.post("/generateImage", json={"prompt": "a red fox"}, headers=user["headers"]).get_json()["payload"]
    assert queued["status"] == "queued" and "no generation worker" in queued["statusMessage"]
    status = client.get("/getItemStatus", query_string={"imageID": queued["imageID"]},
                        headers=user["headers"]).get_json()["payload"]
    assert "aimg worker" in status["statusMessage"]
    clear_generation_queues(app)
