"""The host link's robustness: faults injected by the proxy, garbage, silence, dropped links."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from edgeprune.errors import DeviceError
from edgeprune.profile.client import DeviceClient
from edgeprune.profile.frames import Command, FrameError, decode, encode
from edgeprune.profile.link import Link
from edgeprune.testing import native
from edgeprune.testing.faults import TO_DEVICE, TO_HOST, FaultProxy

pytestmark = pytest.mark.xdist_group("link")  # one worker keeps the module's fixture

FAKE_MODEL = Path(__file__).parent / "c" / "fake_model.c"
DATA = bytes(range(1, 251)) * 4  # 1000 bytes, first byte not the fake model's failure trigger


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    executable = native.build([FAKE_MODEL], tmp_path_factory.mktemp("host") / "ep_host")
    with native.HostDevice(executable) as dev:
        yield dev


@pytest.fixture
def proxy(device):
    with FaultProxy(device.port) as p:
        yield p


def run_model(client: DeviceClient) -> tuple[list[int], bytes]:
    client.write_input(0, DATA)
    return client.infer(2), client.read_output(0)


def test_frames_round_trip_and_catch_corruption() -> None:
    frame = encode(Command.INFO, 300, b"\x01\x02")
    assert decode(frame).seq == 300 & 0xFF and decode(frame).payload == b"\x01\x02"
    for i in range(1, len(frame)):
        corrupt = frame[:i] + bytes([frame[i] ^ 0x10]) + frame[i + 1:]
        with pytest.raises(FrameError):
            decode(corrupt)


@pytest.mark.parametrize("direction, frame", [
    # frames: HELLO, WRITE_INPUT x2, INFER, INFO x2 (read_output asks for sizes), READ_OUTPUT x2
    (TO_DEVICE, 0), (TO_DEVICE, 1), (TO_DEVICE, 3), (TO_DEVICE, 5), (TO_DEVICE, 7),
    (TO_HOST, 0), (TO_HOST, 2), (TO_HOST, 3), (TO_HOST, 4), (TO_HOST, 6),
])
def test_a_flipped_byte_is_detected_and_resent(proxy: FaultProxy, direction: str, frame: int) -> None:
    proxy.flip(direction, frame)
    with DeviceClient(proxy.url, timeout=1.0) as client:
        ticks, output = run_model(client)
    assert proxy.applied == [(direction, frame, "flip")]
    assert output == bytes(b + 1 for b in DATA) and len(ticks) == 2


def test_a_flipped_length_byte_is_survived(proxy: FaultProxy) -> None:
    proxy.flip(TO_HOST, 2, offset=3)  # the INFER reply claims another length
    with DeviceClient(proxy.url, timeout=0.5) as client:
        assert run_model(client)[1] == bytes(b + 1 for b in DATA)


def test_a_dropped_connection_is_a_clear_error(proxy: FaultProxy) -> None:
    proxy.drop(TO_HOST, 3)  # HELLO, two WRITE_INPUT chunks, then INFER
    with DeviceClient(proxy.url, timeout=1.0) as client:
        client.write_input(0, DATA)
        with pytest.raises(DeviceError, match="connection lost"):
            client.infer(1)


def serve(reply: bytes | None) -> int:
    """A one-connection server on 127.0.0.1 that sends `reply` over and over (None: silence)."""
    server = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        conn, _ = server.accept()
        with conn, server:
            conn.settimeout(0.05)
            try:
                while True:
                    if reply:
                        conn.sendall(reply)
                    else:
                        time.sleep(0.05)
            except OSError:
                pass

    threading.Thread(target=run, daemon=True).start()
    return server.getsockname()[1]


def test_garbage_is_a_clear_error() -> None:
    port = serve(b"garbage! " * 100)
    with pytest.raises(DeviceError, match="not frames of the edgeprune protocol"):
        Link(f"socket://127.0.0.1:{port}", timeout=0.5)


def test_silence_is_a_clear_error() -> None:
    port = serve(None)
    with pytest.raises(DeviceError, match=r"HELLO failed after 2 attempts: no reply within 0.2 s"):
        Link(f"socket://127.0.0.1:{port}", timeout=0.2, retries=1)


def test_an_echoing_port_is_an_error() -> None:
    with pytest.raises(DeviceError, match="HELLO failed"):
        Link("loop://", timeout=0.2, retries=1)


def test_no_such_port() -> None:
    with pytest.raises(DeviceError, match="cannot open"):
        Link("/dev/does-not-exist", timeout=0.2)
