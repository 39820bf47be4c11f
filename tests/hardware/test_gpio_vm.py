"""The gpio driver's guest suite (``guest/``), run as root in a tiny VM with gpio-sim.

The first run builds the kernel (about 3-4 minutes on 2 cores) and caches it under
/var/cache/camio-gpio-sim; later runs boot in a few seconds. A failure shows the guest's output.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from gpiosim_vm import REPO, GuestRun, VmError, ensure_packages, kernel_image, missing_tools
from gpiosim_vm import run_in_guest as boot

GUEST_TIMEOUT_S = 300  # TCG on a loaded 2-core box: generous, the run itself takes seconds


@pytest.fixture(scope="session")
def gpio_vm() -> Path:
    """The cached kernel (built on first use); skips only when the tools cannot be had."""
    if sys.platform != "linux":
        pytest.skip("the GPIO VM needs Linux")
    if missing_tools():
        ensure_packages()
    missing = missing_tools()
    if missing:
        pytest.skip(f"the GPIO VM needs {', '.join(missing)} (see .ci/system-deps)")
    try:
        return kernel_image()
    except VmError as exc:
        pytest.fail(str(exc), pytrace=False)


def run_guest_pytest(*args: str) -> GuestRun:
    python = str(Path(sys.prefix) / "bin" / "python")
    command = [
        python,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "pytest_asyncio.plugin",
        "-o",
        "addopts=",
        "-rA",
        "--tb=short",
        "--color=no",
        "tests/hardware/guest",
        *args,
    ]
    try:
        return boot(command, timeout=GUEST_TIMEOUT_S, cwd=str(REPO))
    except VmError as exc:
        pytest.fail(str(exc), pytrace=False)


def test_gpio_driver_on_gpio_sim_in_a_vm(gpio_vm: Path) -> None:
    result = run_guest_pytest()
    summary = re.findall(r"^=+ .*(?:passed|failed|error|skipped).* =+$", result.console, re.M)
    if result.rc != 0 or not summary:
        pytest.fail(
            f"guest suite failed (rc={result.rc}, {result.seconds:.1f} s); guest console:\n"
            f"{result.console}",
            pytrace=False,
        )
    assert "passed" in summary[-1]
    skipped = re.findall(r"^SKIPPED .*$", result.console, re.M)
    # Only the chip-removal test may skip (a kernel that refuses to remove a chip in use).
    assert all("remove a chip" in line for line in skipped), "\n".join(skipped)
    if os.environ.get("CAMIO_GPIO_VM_VERBOSE"):
        print(result.console)
    print(f"guest suite: {summary[-1].strip('= ')} in {result.seconds:.1f} s")
