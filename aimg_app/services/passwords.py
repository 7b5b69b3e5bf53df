"""The contract's password policy (at least 8 characters with an upper-case letter, a lower-case
letter, a digit and a special character: the contract's regex) and strong-password generation."""
from __future__ import annotations

import re
import secrets
import string

# The contract's regex, verbatim.
PASSWORD_POLICY = re.compile(r"""^(?=.*[A-Z])(?=.*[a-z])(?=.*[0-9])(?=.*[!@#$%^&*()_+\-=[\]{};':"\\|,.<>/?]).{8,}$""")
PASSWORD_POLICY_TEXT = (
    "at least 8 characters, with an upper-case letter, a lower-case letter, a digit and one of "
    """!@#$%^&*()_+-=[]{};':"\\|,.<>/?"""
)
_SYMBOLS = """!@#$%^&*()_+-=[]{};':"\\|,.<>/?"""
# Characters that are easy to misread are left out of generated passwords.
_UPPER = "".join(c for c in string.ascii_uppercase if c not in "IO")
_LOWER = "".join(c for c in string.ascii_lowercase if c not in "l")
_DIGITS = "23456789"
_SAFE_SYMBOLS = "!@#$%^&*()_+-=[]{}:,.?"


def satisfies_policy(password: str) -> bool:
    return bool(PASSWORD_POLICY.match(password))


def generate_strong_password(length: int = 20) -> str:
    """A CSPRNG password that always satisfies the policy: one of each class, then any."""
    if length < 8:
        raise ValueError("length must be at least 8")
    pools = [_UPPER, _LOWER, _DIGITS, _SAFE_SYMBOLS]
    chars = [secrets.choice(pool) for pool in pools]
    alphabet = "".join(pools)
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)
