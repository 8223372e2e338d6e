"""Loaded at interpreter start by a CLI that a test started with tests.holds.env_with_holds
(this directory on PYTHONPATH): installs the test holds named in FEMDC_TEST_HOLD."""

import os

if os.environ.get("FEMDC_TEST_HOLD"):
    from tests.holds import install

    install(n for n in os.environ["FEMDC_TEST_HOLD"].split(",") if n)
