"""ELF size breakdown on a firmware built here with arm-none-eabi-gcc from symbols of known size."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edgeprune.errors import EdgepruneError
from edgeprune.compile.elfsize import CATEGORIES, memory_breakdown

CC = "arm-none-eabi-gcc"
pytestmark = [pytest.mark.skipif(shutil.which(CC) is None, reason="needs arm-none-eabi-gcc"), pytest.mark.xdist_group("elfsize")]  # one worker keeps the module's fixture

# Functions in assembly so that their sizes are exact: one global kernel, one local helper of the
# kernel file, one runtime function.
KERNELS_C = r"""
__asm__(".file \"kernels.c\"\n"
        ".section .text.kernels,\"ax\",%progbits\n"
        ".global tvmgen_default_fused_conv\n"
        ".type tvmgen_default_fused_conv, %function\n"
        ".thumb_func\n"
        "tvmgen_default_fused_conv: .space 64\n"
        ".size tvmgen_default_fused_conv, 64\n"
        ".type conv_helper, %function\n"
        ".thumb_func\n"
        "conv_helper: .space 32\n"
        ".size conv_helper, 32\n");
"""

MAIN_C = r"""
#include <stdint.h>
#include <string.h>
__asm__(".section .text.ep,\"ax\",%progbits\n"
        ".global ep_proto_step\n"
        ".type ep_proto_step, %function\n"
        ".thumb_func\n"
        "ep_proto_step: .space 48\n"
        ".size ep_proto_step, 48\n");
const uint8_t edgeprune_weight_conv1[1000] = {1};
const uint8_t edgeprune_weight_dense[200] = {2};
uint8_t edgeprune_arena[4096];
uint8_t edgeprune_workspace[512];
uint32_t ep_state[4] = {1, 2, 3, 4};
uint32_t counter = 5;
uint8_t scratch[100];
void ep_entry(void) {
  memcpy(edgeprune_arena, edgeprune_weight_conv1, sizeof edgeprune_weight_conv1);
  memset(scratch, (int)counter, sizeof scratch);
  ep_state[0] = edgeprune_workspace[3];
}
"""

LINKER_LD = """
ENTRY(ep_entry)
MEMORY { FLASH (rx) : ORIGIN = 0, LENGTH = 1M  RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 1M }
SECTIONS {
  .text : { *(.text .text.*) *(.rodata .rodata.*) } > FLASH
  .data : { *(.data .data.*) } > RAM AT > FLASH
  .bss (NOLOAD) : { *(.bss .bss.* COMMON) } > RAM
  .stack (NOLOAD) : ALIGN(8) { . += 2048; } > RAM
  /DISCARD/ : { *(.ARM.attributes*) *(.comment) *(.ARM.exidx*) }
}
"""


@pytest.fixture(scope="module")
def firmware(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("elfsize")
    (out / "kernels.c").write_text(KERNELS_C)
    (out / "main.c").write_text(MAIN_C)
    (out / "link.ld").write_text(LINKER_LD)
    elf = out / "firmware.elf"
    subprocess.run([CC, "-mcpu=cortex-m4", "-mthumb", "-O1", "-ffunction-sections",
                    "-fdata-sections", "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
                    "-T", "link.ld", "kernels.c", "main.c", "-o", elf.name],
                   cwd=out, check=True, capture_output=True)
    return elf


def berkeley_size(elf: Path) -> tuple[int, int, int]:
    """text, data, bss as binutils' `size` counts them: an independent check of the totals."""
    line = subprocess.run(["arm-none-eabi-size", "-B", str(elf)], check=True, capture_output=True,
                          text=True).stdout.splitlines()[1]
    text, data, bss = (int(word) for word in line.split()[:3])
    return text, data, bss


def test_categories_are_the_declared_sizes(firmware: Path) -> None:
    mem = memory_breakdown(firmware, ["tvmgen_default_fused_conv"], kernel_files=["kernels.c"])
    assert mem.flash["weights"] == 1200
    assert mem.flash["kernels"] == 64 + 32
    assert mem.ram["arena"] == 4096 and mem.flash["arena"] == 0
    assert mem.ram["workspace"] == 512
    assert mem.ram["stack"] == 2048
    # ep_proto_step and ep_entry in flash; ep_state is .data: its bytes in RAM and flash.
    assert mem.ram["runtime"] == 16
    assert mem.flash["runtime"] > 48 + 16
    assert mem.ram["other"] == 4 + 100  # counter and scratch
    assert mem.flash["libc"] > 0  # memcpy, memset


def test_totals_match_binutils_size(firmware: Path) -> None:
    mem = memory_breakdown(firmware, ["tvmgen_default_fused_conv"])
    text, data, bss = berkeley_size(firmware)
    assert mem.flash_total == text + data
    assert mem.ram_total == data + bss
    assert set(mem.flash) == set(CATEGORIES)
    assert mem.to_dict()["ram_total"] == mem.ram_total


def test_local_helpers_need_their_file(firmware: Path) -> None:
    mem = memory_breakdown(firmware, ["tvmgen_default_fused_conv"])
    assert mem.flash["kernels"] == 64


def test_stack_size_symbol_without_stack_section(tmp_path: Path) -> None:
    (tmp_path / "main.c").write_text("void ep_entry(void) {}\n")
    elf = tmp_path / "fw.elf"
    subprocess.run([CC, "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-Wl,-e,ep_entry",
                    "-Wl,--defsym=__stack_size=0x400", "main.c", "-o", elf.name], cwd=tmp_path,
                   check=True, capture_output=True)
    assert memory_breakdown(elf).ram["stack"] == 0x400


def test_not_an_elf(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.elf"
    bogus.write_bytes(b"not an elf at all")
    with pytest.raises(EdgepruneError, match="not an ELF"):
        memory_breakdown(bogus)
