"""A third-party login provider, installed as a package, appears without any core change."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import requests

from tests.conftest import new_session_headers
from tests.support.fake_oauth import Account, FakeOAuthProvider, Running

PLUGIN = textwrap.dedent('''
    from aimg_app.plugin_api import LoginProvider, OAuthIdentity, hookimpl


    class Acme(LoginProvider):
        identifier = "acme"
        label = "Acme"
        scopes = ("email",)

        def identity(self, http):
            info = http.get(self.userinfo_url, timeout=10).json()
            return OAuthIdentity(info["sub"], info["email"], info["email_verified"], info.get("name"))


    @hookimpl
    def register_login_providers():
        return [Acme]
''')


@pytest.fixture()
def installed_plugin(tmp_path):
    """What `pip install acme-aimg-login` leaves on sys.path: the module and its dist-info."""
    (tmp_path / "acme_aimg_login.py").write_text(PLUGIN)
    dist = tmp_path / "acme_aimg_login-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-aimg-login\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[aimg]\nacme_login = acme_aimg_login\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("acme_aimg_login", None)


def test_installed_provider_is_listed_and_serves_logins(installed_plugin, make_app):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(installed_plugin), *sys.path]))
    listed = json.loads(subprocess.run([sys.executable, "-m", "aimg_app", "plugins", "--json"], env=env, check=True,
                                       capture_output=True, text=True, timeout=60).stdout)
    assert {"name": "acme_login", "blocked": False, "hooks": {"register_login_providers": ["acme"]}} in listed

    fake = Running(FakeOAuthProvider(account=Account("acme-1", "acme-user@example.com")))
    try:
        client = make_app(plugin_settings={"acme": fake.settings("google")}).test_client()
        start = client.post("/auth/acme", json={"redirectURL": "http://localhost:3000/"}, headers=new_session_headers())
        assert start.status_code == 302 and start.headers["Location"].startswith(fake.url)
        back = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
        callback = back.headers["Location"].split("localhost", 1)[1]
        final = client.get(callback)
        assert final.status_code == 302 and "?b=" in final.headers["Location"]
    finally:
        fake.stop()
