"""Device URLs, the device registry and the serial/socket device on the native host board."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeprune.errors import DeviceError, EdgepruneError
from edgeprune.profile.devices import SerialDevice, open_device, parse_device_url, run_flash_command
from edgeprune.testing import native

pytestmark = pytest.mark.xdist_group("link-devices")  # one worker keeps the module's fixture

FAKE_MODEL = Path(__file__).parent / "c" / "fake_model.c"


def test_parse_the_three_kinds() -> None:
    qemu = parse_device_url("qemu:mps2-an386")
    assert (qemu.scheme, qemu.target, qemu.board) == ("qemu", "mps2-an386", "mps2-an386")
    serial = parse_device_url("serial:///dev/ttyACM0?board=nucleo-l4r5zi&baud=115200")
    assert (serial.scheme, serial.target, serial.board) == ("serial", "/dev/ttyACM0", "nucleo-l4r5zi")
    assert serial.options["baud"] == "115200"
    assert parse_device_url("serial://COM3").target == "COM3"
    ssh = parse_device_url("ssh://pi@raspberry:2222?board=rpi4")
    assert (ssh.scheme, ssh.user, ssh.target, ssh.port, ssh.board) == ("ssh", "pi", "raspberry", 2222, "rpi4")


@pytest.mark.parametrize("text, message", [
    ("usb://board", r"scheme 'usb'.*known schemes: qemu:, qemu-user:, serial:, socket:, ssh:"),
    ("ssh://", "names no ssh target"),
    ("/dev/ttyACM0", "has no scheme"),
    ("serial://", "names no serial target"),
    ("socket://host:port", "Port could not be cast"),
])
def test_bad_device_strings(text: str, message: str) -> None:
    with pytest.raises(EdgepruneError, match=message):
        open_device(text)


def test_serial_device_needs_a_way_to_flash(tmp_path: Path) -> None:
    (tmp_path / "firmware.elf").write_bytes(b"\x7fELF")
    device = open_device("serial:///dev/ttyACM0?board=nucleo-l4r5zi")
    assert isinstance(device, SerialDevice)
    with pytest.raises(DeviceError, match=r"`pyocd load -t TARGET .*profile.elf` yourself"):
        device.prepare(tmp_path)


def test_a_flash_command_names_the_firmware_and_its_failure_is_shown(tmp_path: Path) -> None:
    with pytest.raises(EdgepruneError, match=r"does not name the firmware: put \{elf\}"):
        run_flash_command("openocd -f board.cfg", tmp_path / "profile.elf")
    with pytest.raises(DeviceError, match=r"failed with code 3:\nno probe for .*profile.elf"):
        run_flash_command("sh -c 'echo no probe for $0; exit 3' {elf}", tmp_path / "profile.elf")
    with pytest.raises(EdgepruneError, match=r"'qemu:mps2-an386' takes no flash option \(its options: timeout, retries, "):
        open_device("qemu:mps2-an386", flash="pyocd load {elf}")


@pytest.fixture(scope="module")
def host_board(tmp_path_factory):
    with native.HostDevice(native.build([FAKE_MODEL], tmp_path_factory.mktemp("host") / "ep_host")) as dev:
        yield dev


def test_socket_device_measures(host_board, tmp_path: Path) -> None:
    image = np.arange(1000, dtype=np.int64).astype(np.int8).reshape(1, 10, 10, 10)
    with open_device(f"socket://127.0.0.1:{host_board.port}?board=host-sim&unit=ns") as device:
        device.prepare(tmp_path)
        m = device.run([image], repeats=5)
        with pytest.raises(EdgepruneError, match="takes 1000 bytes, got 999"):
            device.run([bytes(999)])
    plus_one, total = m.outputs
    assert plus_one.dtype == np.int8 and plus_one.shape == (1, 10, 10, 10)
    assert np.array_equal(plus_one, image + np.int8(1))
    assert total.tolist() == [int(image.astype(np.int64).sum())]
    assert len(m.run_ticks) == 5 and m.minimum <= m.median <= m.maximum
    assert len(m.layers) == 70 and m.unit == "ns" and (m.board, m.model_id) == ("host-sim", "fake-plus-one")
    assert m.to_dict()["stack_bytes"] == m.stack_bytes > 0
