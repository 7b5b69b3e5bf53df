import re

from tests.conftest import assert_ok

# The contract's regex, copied from the document (not from the implementation).
POLICY = re.compile(r"""^(?=.*[A-Z])(?=.*[a-z])(?=.*[0-9])(?=.*[!@#$%^&*()_+\-=[\]{};':"\\|,.<>/?]).{8,}$""")


def test_generated_passwords_always_satisfy_the_policy_and_differ(client):
    seen = set()
    for _ in range(200):
        password = assert_ok(client.get("/generateStrongPassword"))["payload"]
        assert isinstance(password, str) and POLICY.match(password), password
        seen.add(password)
    assert len(seen) == 200


def test_no_session_is_needed(client):
    assert_ok(client.get("/generateStrongPassword"))
