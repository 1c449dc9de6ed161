"""The SSH device against a real OpenSSH server: Debian's sshd started here on loopback with a
throw-away host key, authorized_keys and known_hosts (skipped when sshd is not installed). The
"board" is this x86 machine, so the aarch64 / armv7 executables run there through qemu-user
(`exec=` in the device URL); the copying, running, reading back and the errors are the real ones."""
from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import numpy as np
import pytest

from edgeprune.cli import main as cli_main
from edgeprune.compile.api import step_label
from edgeprune.errors import DeviceError
from edgeprune.profile.api import profile
from edgeprune.profile.devices import open_device
from edgeprune.profile.linux_app import IllegalInstructionError
from edgeprune.profile.inputs import random_inputs
from edgeprune.profile.store import ResultsStore
from edgeprune.reference import reference_outputs

pytestmark = [pytest.mark.qemu, pytest.mark.xdist_group("sshd")]
SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgeprune-test", "-f", str(path)], check=True)
    return path


def _wait_for(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert server.poll() is None, f"sshd stopped: {log.read_text()}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            assert time.monotonic() < deadline, f"sshd did not listen: {log.read_text()}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """An sshd on 127.0.0.1:PORT accepting only a fresh client key; url(**options) names it."""
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh") is None:
        pytest.skip("OpenSSH is not installed (Debian packages openssh-server, openssh-client)")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    folder = tmp_path_factory.mktemp("sshd")
    host_key, client_key = _keygen(folder / "host_key"), _keygen(folder / "client_key")
    (folder / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    port = _free_port()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key.with_suffix('.pub').read_text()}")
    (folder / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", "PubkeyAuthentication yes",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        "PermitRootLogin prohibit-password", ""]))
    log = folder / "sshd.log"
    with open(log, "w") as sink:
        server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stdout=sink, stderr=sink)
    try:
        _wait_for(port, server, log)

        def url(port: int = port, **options: str) -> str:
            options = {"identity": str(client_key), "known_hosts": str(folder / "known_hosts"), **options}
            return f"ssh://{getpass.getuser()}@127.0.0.1:{port}?{urlencode(options)}"

        yield SimpleNamespace(port=port, folder=folder, url=url)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_profile_over_ssh_copies_runs_and_stores_the_record(sshd, compiled, tmp_path):
    model = compiled("digits_cnn", "cortex-a53")
    url = sshd.url(exec="qemu-aarch64")
    report = profile(model, url, runs=3, store=tmp_path / "results.db")
    record = report.record
    assert record.outputs_match and report.relative_error < 1e-4
    assert record.unit == "ns" and len(record.runs) == 3 and all(t > 0 for t in record.runs)
    assert [name for name, _ in record.layers] == [step_label(s) for s in model.manifest["steps"]]
    assert all(value > 0 for _, value in record.layers)
    assert "wall clock" in report.method and "qemu-aarch64" in report.method
    with ResultsStore(tmp_path / "results.db") as store:
        assert store.get(record.id).device == url


def test_the_board_folder_holds_the_executable_and_goes_away(sshd, compiled):
    model = compiled("digits_cnn", "cortex-a53")
    x = random_inputs(model.manifest, seed=5)
    with open_device(sshd.url(exec="qemu-aarch64")) as device:
        device.prepare(model.path)
        remote = Path(device.remote_dir)  # the "board" is this machine
        assert (remote / "firmware.elf").read_bytes() == model.elf.read_bytes()
        measured = device.run(x, repeats=2)
    assert not remote.exists()
    assert np.abs(measured.outputs[0] - reference_outputs(model.onnx, x)[0]).max() < 1e-4
    assert len(measured.run_ticks) == 2 and len(measured.layer_ticks) == len(model.manifest["steps"])


def test_cli_profile_over_ssh(sshd, compiled, tmp_path, capsys):
    model = compiled("digits_cnn", "cortex-a53")
    assert cli_main(["profile", str(model.path), "--device", sshd.url(exec="qemu-aarch64"), "--runs", "2",
                     "--store", str(tmp_path / "results.db")]) == 0
    out = capsys.readouterr().out
    assert "ns per inference: median" in out and "outputs vs onnxruntime: match" in out


def test_sigill_on_the_board_is_named(sshd, compiled):
    """An armv7-a/NEON build on an ARMv6 core (the Raspberry Pi 1 and Zero's ARM1176)."""
    model = compiled("digits_cnn", "cortex-a7")
    with pytest.raises(IllegalInstructionError, match=r"SIGILL \(illegal instruction\) on the core at .*@127\.0\.0\.1"
                                                     r".*cortex-a7, \+neon, \+vfp4"):
        profile(model, sshd.url(exec="qemu-arm -cpu arm1176"), store=False)


def test_a_missing_exec_program_is_named(sshd, compiled):
    with pytest.raises(DeviceError, match=r"could not start `no-such-emulator` \(the exec= option\)"):
        profile(compiled("digits_cnn", "cortex-a53"), sshd.url(exec="no-such-emulator"), store=False)


def test_unknown_host_key_says_how_to_add_it(sshd, compiled, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(DeviceError, match=rf"host key of 127\.0\.0\.1:{sshd.port} is not known, and edgeprune keeps "
                                          rf"host-key checking on.*ssh-keyscan -p {sshd.port} 127\.0\.0\.1 >> {empty}"):
        profile(compiled("digits_cnn", "cortex-a53"), sshd.url(known_hosts=str(empty)), store=False)
    assert empty.read_text() == ""  # nothing was added behind the user's back


def test_changed_host_key_is_refused(sshd, compiled, tmp_path):
    other = _keygen(tmp_path / "other_host_key").with_suffix(".pub").read_text()
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {other}")
    with pytest.raises(DeviceError, match=r"has CHANGED.*ssh-keygen -R .\[127\.0\.0\.1\]:\d+. -f "):
        profile(compiled("digits_cnn", "cortex-a53"), sshd.url(known_hosts=str(tmp_path / "known_hosts")), store=False)


def test_failed_authentication_is_clear(sshd, compiled, tmp_path):
    stranger = _keygen(tmp_path / "stranger")
    with pytest.raises(DeviceError, match=r"SSH authentication as .*@127\.0\.0\.1 failed.*ssh-copy-id -p"):
        profile(compiled("digits_cnn", "cortex-a53"), sshd.url(identity=str(stranger)), store=False)


def test_unreachable_host_is_clear(sshd, compiled):
    with pytest.raises(DeviceError, match=r"cannot reach 127\.0\.0\.1:\d+ over SSH.*Connection refused"):
        profile(compiled("digits_cnn", "cortex-a53"), sshd.url(port=_free_port()), store=False)
