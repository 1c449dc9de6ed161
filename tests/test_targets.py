"""Board files: every one parses, names its memory, and a new board is just a new file."""
import pytest

from edgeprune.errors import EdgepruneError, UnknownTargetError
from edgeprune.targets import load_target, require_program, target_names
from edgeprune.errors import ToolchainMissingError

QEMU_MACHINES = {"mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547"}


def test_the_qemu_72_cortex_m_machines_are_described():
    described = {load_target(n).qemu_machine for n in target_names()}
    assert QEMU_MACHINES <= described


@pytest.mark.parametrize("name", target_names())
def test_board_file_is_complete(name):
    t = load_target(name)
    assert t.flash.length > 0 and t.ram.length > 0 and t.clock_hz > 0
    assert t.cflags and t.llvm_target().kind.name == "llvm"
    if t.family == "cortex-m":
        assert t.llvm["mtriple"].startswith("thumb")
        assert t.llvm["mfloat-abi"] == ("hard" if t.has_fpu else "soft")
    else:  # Linux boards: aarch64, or armv7-a with the hard-float ABI; run by qemu-user
        gcc_prefix = {"aarch64": "aarch64-linux-gnu-", "armv7a": "arm-linux-gnueabihf-"}
        assert t.gcc_prefix == gcc_prefix[t.llvm["mtriple"].split("-")[0]]
        assert t.llvm.get("mfloat-abi", "hard") == "hard" and t.qemu_user and t.qemu_cpu


def test_adding_a_board_is_adding_a_file(tmp_path, monkeypatch):
    text = load_target("mps2-an386").source.read_text().replace("Arm MPS2+ AN386", "My board")
    (tmp_path / "my-board.toml").write_text(text)
    monkeypatch.setenv("EDGEPRUNE_TARGETS_PATH", str(tmp_path))
    assert "my-board" in target_names()
    assert load_target("my-board").description.startswith("My board")


def test_malformed_board_file_is_reported(tmp_path, monkeypatch):
    (tmp_path / "broken.toml").write_text('description = "no memory section"\n')
    monkeypatch.setenv("EDGEPRUNE_TARGETS_PATH", str(tmp_path))
    with pytest.raises(EdgepruneError, match="broken.toml is malformed"):
        load_target("broken")


def test_unknown_board():
    with pytest.raises(UnknownTargetError, match="known boards: .*mps2-an386"):
        load_target("mps2-an999")


def test_missing_program_names_its_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainMissingError, match="Debian package qemu-system-arm"):
        require_program("qemu-system-arm")
