"""Both sides of the protocol together: the C device side, built natively around a fake model
(tests/c/fake_model.c), served on 127.0.0.1 and driven by the Python client through socket://."""
from __future__ import annotations

import random
import socket
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from edgeprune.errors import DeviceError
from edgeprune.profile.client import DeviceClient
from edgeprune.profile.frames import CRC, HEADER, REPLY, Command, Status, decode, encode
from edgeprune.testing import native

pytestmark = pytest.mark.xdist_group("protocol-native")  # one worker keeps the module's fixture

FAKE_MODEL = Path(__file__).parent / "c" / "fake_model.c"


@pytest.fixture(scope="module")
def executable(tmp_path_factory) -> Path:
    return native.build([FAKE_MODEL], tmp_path_factory.mktemp("host") / "ep_host")


@pytest.fixture
def device(executable: Path):
    with native.HostDevice(executable) as dev:
        yield dev


@pytest.fixture
def client(device):
    with DeviceClient(device.url, timeout=1.0) as c:
        yield c


def exchange(sock: socket.socket, frame: bytes):
    """Sends one raw frame and reads one reply frame."""
    sock.sendall(frame)
    data = b""
    while len(data) < HEADER.size or len(data) < HEADER.size + HEADER.unpack_from(data)[3] + CRC.size:
        data += sock.recv(4096)
    return decode(data)


def test_info_describes_the_model(client: DeviceClient) -> None:
    info = client.info()
    assert (info.board, info.model_id, info.tick_hz) == ("host-sim", "fake-plus-one", 10**9)
    assert (info.arena_bytes, info.workspace_bytes) == (4096, 256)
    (image,) = info.inputs
    assert (image.name, image.dtype, image.shape, image.nbytes) == ("image", "int8", (1, 10, 10, 10), 1000)
    assert (image.scale, image.zero_point) == (0.5, -3)
    assert [(t.name, t.dtype, t.shape) for t in info.outputs] == [
        ("plus_one", "int8", (1, 10, 10, 10)), ("sum", "int32", (1,))]
    assert info.layers == tuple(f"layer_{i:02d}" for i in range(70))
    assert info.max_payload == 512


def test_inputs_infer_outputs(client: DeviceClient) -> None:
    data = bytes(random.Random(1).randrange(256) for _ in range(1000))
    if data[0] == 0xEE:  # the fake model's failure trigger
        data = b"\0" + data[1:]
    client.write_input(0, data)
    ticks = client.infer(3)
    assert len(ticks) == 3 and all(t > 0 for t in ticks)
    assert client.read_output(0) == bytes((b + 1) & 0xFF for b in data)
    assert struct.unpack("<i", client.read_output(1))[0] == sum(struct.unpack("1000b", data))
    layers = client.layer_ticks()
    assert len(layers) == 70 and layers[0] > 0
    assert sum(layers) <= ticks[-1]
    assert client.stack_high_water() > 0


def test_more_runs_than_one_reply_holds(client: DeviceClient) -> None:
    client.write_input(0, bytes(1000))
    assert len(client.infer(100)) == 100


def test_invoke_failure_is_reported(client: DeviceClient) -> None:
    client.write_input(0, b"\xee")
    with pytest.raises(DeviceError, match=r"invoke failed.*code 42 in run 0"):
        client.infer(1)


def test_out_of_range_requests_are_refused(client: DeviceClient) -> None:
    with pytest.raises(DeviceError, match="rejected the arguments"):
        client.write_input(0, bytes(1001))
    with pytest.raises(DeviceError, match="rejected the arguments"):
        client.write_input(1, b"x")
    with pytest.raises(DeviceError, match="rejected the arguments"):
        client.link.request(Command.READ_OUTPUT, struct.pack("<BIH", 1, 2, 4))
    with pytest.raises(DeviceError, match="does not know"):
        client.link.request(0x55)
    client.write_input(0, bytes(1000))  # the session goes on after errors
    assert client.infer(1)


def test_a_repeated_frame_is_answered_from_the_cache(device) -> None:
    with socket.create_connection(("127.0.0.1", device.port)) as sock:
        assert exchange(sock, encode(Command.HELLO, 7)).status == Status.OK
        first = exchange(sock, encode(Command.INFER, 8, struct.pack("<I", 2)))
        again = exchange(sock, encode(Command.INFER, 8, struct.pack("<I", 2)))
        assert first.status == Status.OK and again == first  # same ticks: not run twice
        fresh = exchange(sock, encode(Command.INFER, 9, struct.pack("<I", 2)))
        assert fresh.status == Status.OK and fresh.payload != first.payload


def test_out_of_order_frames_are_refused(device) -> None:
    with socket.create_connection(("127.0.0.1", device.port)) as sock:
        before_hello = exchange(sock, encode(Command.READ_STACK, 3))
        assert (before_hello.type, before_hello.seq, before_hello.status) == (
            Command.READ_STACK | REPLY, 3, Status.SEQUENCE)
        assert exchange(sock, encode(Command.HELLO, 200)).status == Status.OK
        assert exchange(sock, encode(Command.READ_STACK, 202)).status == Status.SEQUENCE
        assert exchange(sock, encode(Command.READ_STACK, 200, b"x")).status == Status.SEQUENCE
        assert exchange(sock, encode(Command.READ_STACK, 201)).status == Status.OK


def test_malformed_frames_get_an_error_reply(device) -> None:
    with socket.create_connection(("127.0.0.1", device.port)) as sock:
        good = encode(Command.HELLO, 1)
        bad_crc = good[:-1] + bytes([good[-1] ^ 1])
        assert exchange(sock, bad_crc).status == Status.CRC
        oversize = bytes([0xEB, Command.WRITE_INPUT, 2]) + struct.pack("<H", 513) + bytes(20)
        assert exchange(sock, oversize).status == Status.LENGTH
        assert exchange(sock, good[:6]).status == Status.TIMEOUT  # cut short, then silence
        assert exchange(sock, encode(Command.HELLO | REPLY, 1, b"\0")).status == Status.COMMAND
        assert exchange(sock, b"noise" + good).status == Status.OK  # bytes before a sync are skipped


def test_device_side_builds_for_cortex_m_with_no_libc_but_memcpy_and_memset(tmp_path: Path) -> None:
    obj = tmp_path / "ep_protocol.o"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-std=c99", "-Os", "-Wall", "-Wextra",
                    "-Werror", "-pedantic", f"-I{native.RUNTIME_DIR}", "-c", str(native.PROTOCOL_SOURCES[0]),
                    "-o", str(obj)], check=True, capture_output=True)
    with open(obj, "rb") as f:
        undefined = {s.name for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()
                     if s.name and s["st_shndx"] == "SHN_UNDEF"}
    port = {"ep_port_read_byte", "ep_port_write", "ep_timer_ticks", "ep_stack_high_water"}
    assert port <= undefined <= port | {"memcpy", "memset"}
