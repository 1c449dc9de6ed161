"""Each board's clock_hz is what its QEMU timer really counts at: a loop of exactly 2,000,000
instructions measures 2,000,000 instructions (to one tick, or the few dozen instructions the two
timer reads cost on a fast clock) under -icount shift=0."""
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeprune.compile import firmware
from edgeprune.profile.qemu import qemu_command
from edgeprune.targets import load_target, target_names

pytestmark = pytest.mark.qemu
LOOP_INSTRUCTIONS = 2_000_000


@pytest.mark.parametrize("board", [n for n in target_names() if load_target(n).qemu_machine])
def test_timer_counts_instructions(tmp_path, board):
    target = load_target(board)
    firmware.write_project(tmp_path, target, kernels_file="", stack_bytes=4096)
    shutil.copy(Path(__file__).parent / "firmware" / "calibrate_timer.c", tmp_path / "calibrate.c")
    drivers = " ".join(f"runtime/{path.name}" for path in target.drivers if not path.name.startswith("uart_"))
    sources = f"calibrate.c runtime/startup.c runtime/ep_semihost.c {drivers}"
    elf = firmware.build(tmp_path, target, f"SOURCES={sources}", "HEADERS=")
    command = qemu_command(target, elf)
    subprocess.run(command, cwd=tmp_path, check=True, timeout=60, capture_output=True)
    ticks = int((tmp_path / "console.txt").read_text().split()[0])
    instructions_per_tick = 1e9 / target.clock_hz
    timer_reads = 40  # instructions: a timer read is a call with a re-read loop
    assert ticks * instructions_per_tick == pytest.approx(LOOP_INSTRUCTIONS, abs=max(instructions_per_tick, timer_reads))
