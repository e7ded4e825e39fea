"""Running the programs of examples/clients/ (docs/integration.md) as a partner would."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "clients"
RUN_SECONDS = 240
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def python(name: str) -> list[str]:
    """The command that runs examples/clients/python/<name>.py."""
    return [sys.executable, str(EXAMPLES / "python" / f"{name}.py")]


def node(name: str) -> list[str]:
    """The command that runs the compiled examples/clients/typescript/src/<name>.ts."""
    return ["node", str(EXAMPLES / "typescript" / "dist" / f"{name}.js")]


def run(argv: list[str], *, env: dict[str, str], cwd: pathlib.Path) -> str:
    """Run an example; its output, after asserting it exited 0."""
    assert shutil.which(argv[0]), f"{argv[0]} missing: `make client-examples` installs Node's"
    assert pathlib.Path(argv[1]).is_file(), f"{argv[1]} missing: run `make client-examples`"
    done = subprocess.run(
        argv, env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True,
        timeout=RUN_SECONDS, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def saved_images(folder: pathlib.Path) -> list[bytes]:
    """The images an example saved under folder/out/, each checked to be a PNG file."""
    found = [path.read_bytes() for path in sorted((folder / "out").glob("batch-*-img-*.png"))]
    assert all(data.startswith(PNG_SIGNATURE) for data in found), [data[:16] for data in found]
    return found
