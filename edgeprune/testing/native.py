"""The device side of the profiling protocol built for this machine: a host "board" that serves
the protocol on 127.0.0.1 (targets/runtime/host/ep_host_main.c) around a model's C sources.

For testing the host and device sides together without hardware, and for running a model's
generated C natively.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

from edgeprune.errors import DeviceError, EdgepruneError
from edgeprune.profile.closing import Closing
from edgeprune.targets import TARGETS_DIR, require_program

RUNTIME_DIR = TARGETS_DIR / "runtime"
PROTOCOL_SOURCES = (RUNTIME_DIR / "ep_protocol.c",)
HOST_MAIN = RUNTIME_DIR / "host" / "ep_host_main.c"
WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-Werror")
SANITIZERS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g")


def build(sources: Sequence[Path], output: Path, *, main: Path = HOST_MAIN, sanitize: bool = False,
          cc: str = "gcc") -> Path:
    """Compiles the protocol, `main` and `sources` (the model) into the executable `output`."""
    command = [require_program(cc), *WARNINGS, "-O1", *(SANITIZERS if sanitize else ()),
               f"-I{RUNTIME_DIR}", *map(str, PROTOCOL_SOURCES),
               str(main), *map(str, sources), "-o", str(output)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise EdgepruneError(f"building {output.name} failed:\n{result.stderr}")
    return output


class HostDevice(Closing):
    """Runs a built host board; `url` is its socket:// address. Use as a context manager."""

    def __init__(self, executable: Path) -> None:
        self.process = subprocess.Popen([str(executable), "0"], stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("EP_LISTEN "):
            self.close()
            raise DeviceError(f"{executable} did not start listening: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"socket://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()

