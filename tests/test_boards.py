"""Every QEMU board runs a model correctly, with both kernel back ends where it matters."""
import re
import shutil
import subprocess

import pytest

from edgeprune.profile.run import run
from edgeprune.targets import load_target, target_names

pytestmark = pytest.mark.qemu
QEMU_BOARDS = [name for name in target_names() if load_target(name).qemu_machine]


@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_digits_cnn_runs_on_every_qemu_board(compiled, board):
    report = run(compiled("digits_cnn", board))
    assert report.relative_error < 1e-4


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_c_backend_matches_onnxruntime(compiled, board):
    model = compiled("kws_dscnn", board, backend="c")
    assert (model.path / "src" / "kernels.c").is_file()
    assert "tvm/" not in (model.path / "src" / "kernels.c").read_text()  # no TVM headers on the device
    assert run(model).relative_error < 1e-4


def test_soft_float_core_has_no_fpu_instructions(compiled):
    """The M3 build uses the soft-float ABI: libgcc's float routines, no VFP registers."""
    from elftools.elf.elffile import ELFFile

    elf = compiled("digits_cnn", "mps2-an385").elf
    with open(elf, "rb") as f:
        names = {s.name for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}
    assert "__aeabi_fmul" in names or "__aeabi_fadd" in names
    listing = subprocess.run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(elf)],
                             capture_output=True, text=True, check=True).stdout
    mnemonics = {line.split("\t")[1].split()[0] for line in listing.splitlines()
                 if re.match(r"\s+[0-9a-f]+:\t", line) and len(line.split("\t")) > 1}
    assert "bl" in mnemonics or "blx" in mnemonics  # the listing is read: it has the calls into libgcc
    assert not {m for m in mnemonics if m.startswith("v")}  # VFP mnemonics all start with v (vldr, vmul.f32, ...)


@pytest.mark.parametrize("board", ["mps2-an386", "cortex-a53"])
def test_the_objects_do_not_depend_on_the_folder(compiled, board, tmp_path):
    """A copy of the folder elsewhere (a space in its path), rebuilt without ccache, compiles every
    source to the same object: debug paths are relative, so ccache may share them between models."""
    model = compiled("digits_cnn", board)
    copy = tmp_path / "another folder" / "digits"
    shutil.copytree(model.path, copy)
    subprocess.run(["make", "-s", "-C", str(copy), "clean"], check=True)
    subprocess.run(["make", "-s", "-C", str(copy), "CCACHE="], check=True, capture_output=True)
    objects = sorted(path.relative_to(model.path) for path in (model.path / "build").rglob("*.o"))
    assert len(objects) >= 4 and "src/model.o" in {str(path.relative_to("build")) for path in objects}
    for path in objects:
        assert (copy / path).read_bytes() == (model.path / path).read_bytes(), path


def test_a_failing_ccache_is_named_and_can_be_turned_off(compiled, monkeypatch, tmp_path):
    from edgeprune.compile.firmware import build
    from edgeprune.errors import EdgepruneError

    if shutil.which("ccache") is None:
        pytest.skip("ccache is not installed (Debian package ccache; scripts/bootstrap installs it)")
    copy = tmp_path / "digits"
    shutil.copytree(compiled("digits_cnn").path, copy)
    subprocess.run(["make", "-s", "-C", str(copy), "clean"], check=True)
    monkeypatch.setenv("CCACHE_DIR", "/proc/no-such-cache")  # a directory nobody can create
    with pytest.raises(EdgepruneError, match="ccache failed .*setting CCACHE= in the environment"):
        build(copy, load_target("mps2-an386"))
    monkeypatch.setenv("CCACHE", "")
    assert build(copy, load_target("mps2-an386")).is_file()
