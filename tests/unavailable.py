"""The one rule for a test whose fixture, schema mirror, server or browser is missing: it skips
locally and FAILS under CI (`CI=true`, as GitHub Actions sets it), so CI cannot go green with tests unrun."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

TRUE = ("1", "true", "yes", "on")


def in_ci(*also: str) -> bool:
    """True under CI, or when one of the environment variables `also` is set to a true value."""
    return any(os.environ.get(name, "").strip().lower() in TRUE for name in ("CI", *also))


def unavailable(reason: str, *also: str) -> NoReturn:
    """Skip the test for `reason`; fail it instead under CI (or when a variable in `also` is true)."""
    if in_ci(*also):
        pytest.fail(f"{reason} (required: {' or '.join(('CI', *also))} is set)", pytrace=False)
    pytest.skip(reason)
