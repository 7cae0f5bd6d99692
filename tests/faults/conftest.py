"""The fault drills' shared pieces: their mode (quick or full) and the table of figures they
print at the end of the run (and write with `--faults-out FILE`)."""

from __future__ import annotations

import json

import pytest

from .figures import FIGURES


@pytest.fixture(scope="session")
def full(request) -> bool:
    """Whether the drills run in full (`make faults`): more kills, longer outages."""
    return request.config.getoption("--faults") == "full"


def pytest_terminal_summary(terminalreporter, config):
    if not FIGURES:
        return
    mode = config.getoption("--faults")
    terminalreporter.write_sep("=", f"faults survived ({mode} mode)")
    for line in FIGURES.table():
        terminalreporter.write_line(line)
    out = config.getoption("--faults-out")
    if out:
        with open(out, "w") as f:
            json.dump({"mode": mode, "drills": FIGURES.rows}, f, indent=2)
