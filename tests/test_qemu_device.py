"""The QEMU device: profile.elf on real QEMU, spoken to through socket:// like a board.

Outputs equal onnxruntime's, the layers add up to the total, counts repeat exactly across QEMU
boots, corrupted frames are retried, and a dead or silent QEMU is a clear DeviceError."""
import numpy as np
import pytest

from edgeprune.artefact import content_hash
from edgeprune.errors import DeviceError
from edgeprune.profile.client import DeviceClient
from edgeprune.profile.devices import measure, open_device
from edgeprune.profile.inputs import random_inputs
from edgeprune.reference import reference_outputs, relative_error
from edgeprune.targets import load_target
from edgeprune.testing.faults import TO_DEVICE, TO_HOST, FaultProxy

pytestmark = pytest.mark.qemu


def _measure_once(model, board, inputs, runs=3):
    with open_device(f"qemu:{board}") as device:
        device.prepare(model.path)
        return device.run(inputs, runs)


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_socket_path_matches_reference_and_repeats_exactly(compiled, board):
    model = compiled("digits_cnn", board)
    inputs = random_inputs(model.manifest, seed=3)
    first = _measure_once(model, board, inputs)
    second = _measure_once(model, board, inputs)

    assert relative_error(first.outputs, reference_outputs(model.onnx, inputs)) < 1e-4
    assert first.unit == "instructions"
    assert first.units_per_tick == 1e9 / load_target(board).clock_hz
    assert first.board == board and first.model_id == content_hash(model.onnx)
    assert len(first.layer_ticks) == len(model.manifest["steps"])
    total = first.run_ticks[-1]
    assert abs(sum(first.layer_ticks) - total) <= 0.001 * total
    assert 0 < first.stack_bytes < model.manifest["memory"]["stack_bytes"]
    # the timer's phase is aligned before each run: every run and every boot counts the same
    assert len(set(first.run_ticks)) == 1
    assert (first.run_ticks, first.layer_ticks) == (second.run_ticks, second.layer_ticks)
    assert all(np.array_equal(a, b) for a, b in zip(first.outputs, second.outputs))


def test_int8_model_matches_reference_over_both_transports(quantized, compiled):
    """The UART protocol firmware and the semihosting firmware.elf (what `edgeprune run` runs)
    are two transports of one QEMU device: same outputs, same model, figures a few instructions
    apart (each firmware's own runtime; the timer counts in steps of 40 instructions on the M4)."""
    model = compiled(quantized("digits_cnn"), "mps2-an386")  # the build tests/test_int8.py runs too
    inputs = random_inputs(model.manifest, seed=1)
    measured = _measure_once(model, "mps2-an386", inputs, runs=2)
    reference = reference_outputs(model.onnx, inputs)
    for out, ref in zip(measured.outputs, reference):
        assert out.dtype == ref.dtype
        assert np.abs(out.astype(np.int32) - ref.astype(np.int32)).max() <= 1
    total = measured.run_ticks[-1]
    assert abs(sum(measured.layer_ticks) - total) <= 0.001 * total

    semihosting = _measure_once(model, "mps2-an386?transport=semihosting", inputs, runs=2)
    assert all(np.array_equal(a, b) for a, b in zip(semihosting.outputs, measured.outputs))
    assert (semihosting.model_id, semihosting.unit) == (measured.model_id, measured.unit)
    assert len(semihosting.layer_ticks) == len(measured.layer_ticks)
    assert abs(measured.median - semihosting.median) <= 0.001 * semihosting.median


@pytest.mark.parametrize("board", ["mps2-an386", "netduinoplus2", "microbit"])  # CMSDK, ST and Nordic UARTs
def test_corrupted_frames_are_detected_and_retried(compiled, board):
    model = compiled("digits_cnn", board)
    inputs = random_inputs(model.manifest)
    with open_device(f"qemu:{board}") as device:
        device.prepare(model.path)
        clean = device.run(inputs, 2)
        device.client.close()  # QEMU's UART takes the next connection: through the proxy
        device.client = None
        with FaultProxy(device.port) as proxy:
            proxy.flip(TO_DEVICE, 3)             # a request: the firmware's CRC check refuses it
            proxy.flip(TO_HOST, 5, offset=7)     # a reply: the host's CRC check refuses it
            with DeviceClient(proxy.url, timeout=2.0, retries=3) as client:
                faulty = measure(client, inputs, 2, unit=clean.unit, units_per_tick=clean.units_per_tick)
            assert {(d, i) for d, i, _ in proxy.applied} == {(TO_DEVICE, 3), (TO_HOST, 5)}
    assert faulty.run_ticks == clean.run_ticks and faulty.layer_ticks == clean.layer_ticks
    assert all(np.array_equal(a, b) for a, b in zip(faulty.outputs, clean.outputs))


def test_silent_qemu_is_stopped_after_the_time_out(compiled):
    model = compiled("digits_cnn", "mps2-an386")
    # 60 inferences (about 94 million instructions) in one request cannot answer within 10 ms
    with open_device("qemu:mps2-an386", run_timeout=0.01, retries=0) as device:
        device.prepare(model.path)
        process = device.process
        with pytest.raises(DeviceError, match="no reply within .*QEMU was still running and has been stopped"):
            device.run(random_inputs(model.manifest), 60)
        assert process.poll() is not None and device.process is None
