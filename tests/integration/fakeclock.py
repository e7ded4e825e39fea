"""Run a test's process with its wall clock off: `fakeclock.c`, built here with the C
compiler into a library the process loads with LD_PRELOAD. No product code knows of it."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

SOURCE = pathlib.Path(__file__).with_name("fakeclock.c")
BUILD_SECONDS = 60


def build(workdir: pathlib.Path) -> pathlib.Path:
    """The shared library, compiled into `workdir`; a clear error without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError(
            "no C compiler (cc) on PATH: `make test` installs gcc (apt-get install gcc)"
        )
    library = workdir / "fakeclock.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(SOURCE), "-ldl"],
        check=True,
        timeout=BUILD_SECONDS,
    )
    return library


def prefix(*, library: pathlib.Path, offset_seconds: int) -> tuple[str, ...]:
    """A command prefix that runs the command with its wall clock `offset_seconds` off."""
    return ("env", f"LD_PRELOAD={library}", f"FAKECLOCK_OFFSET_SECONDS={offset_seconds}")
