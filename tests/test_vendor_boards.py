"""Vendor silicon on QEMU: the netduinoplus2 (STM32F405, ST's USART) and the micro:bit (nRF51822
Cortex-M0, Nordic's UART and TIMER0) run and profile models through their own drivers; the M0
gets the portable int8 kernels and stays bit-exact; a model too big for 16 KiB of RAM says by
how much."""
import numpy as np
import pytest

from edgeprune.compile.api import compile_model
from edgeprune.compile.int8 import has_dsp
from edgeprune.errors import ModelTooLargeError
from edgeprune.profile.devices import open_device
from edgeprune.profile.run import random_inputs, reference_outputs, run
from edgeprune.targets import load_target

pytestmark = pytest.mark.qemu


def test_vendor_boards_name_their_drivers():
    names = {board: [path.name for path in load_target(board).drivers]
             for board in ("netduinoplus2", "microbit", "nucleo-l4r5zi", "mps2-an386")}
    assert names == {
        "netduinoplus2": ["timer_systick.c", "uart_stm32_usart.c", "setup_netduinoplus2.c"],
        "microbit": ["timer_nrf.c", "uart_nrf.c", "setup_microbit.c"],
        "nucleo-l4r5zi": ["timer_dwt.c", "uart_stm32_lpuart.c", "setup_nucleo_l4r5zi.c"],
        "mps2-an386": ["timer_systick.c", "uart_cmsdk.c"],
    }


def test_cortex_m0_has_no_dsp_and_gets_the_portable_int8_kernels(quantized, compiled):
    assert not has_dsp(load_target("microbit").llvm_target())
    model = compiled(quantized("digits_cnn"), "microbit")
    int8_steps = [s for s in model.manifest["steps"] if s["kernel"].startswith(("conv2d_int8", "dense_int8"))]
    assert len(int8_steps) == 4 and not any("layer" in s for s in int8_steps)  # no DSP kernel
    report = run(model)
    assert report.exact_matches[0] == report.exact_matches[1]  # bit-exact with onnxruntime


@pytest.mark.slow
def test_model_too_big_for_16_kib_of_ram_says_by_how_much(tmp_path):
    # digits_cnn plans a 6,144 B arena; with a 12 KiB stack it needs about 2.5 KiB more than the 16 KiB
    with pytest.raises(ModelTooLargeError) as err:
        compile_model("digits_cnn", "microbit", tmp_path / "out", stack_bytes=12_288)
    message = str(err.value)
    assert "does not fit microbit" in message and "RAM 16,384 bytes" in message
    overflow = int(message.split("overflows RAM by ")[1].split(" bytes")[0].replace(",", ""))
    assert 6_144 + 12_288 - 16_384 <= overflow < 6_144 + 12_288 - 16_384 + 1_024  # arena + stack, plus a little
    assert "arena 6,144 B, workspace 0 B, stack 12,288 B (--stack-bytes)" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("board", ["netduinoplus2", "microbit"])
def test_profiling_over_the_vendor_uart_matches_the_reference(compiled, board):
    model = compiled("digits_cnn", board)
    inputs = random_inputs(model.manifest, seed=5)
    with open_device(f"qemu:{board}") as device:
        device.prepare(model.path)
        measured = device.run(inputs, 2)
    reference = reference_outputs(model.onnx, inputs)
    assert all(np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max() for out, ref in zip(measured.outputs, reference))
    assert measured.board == board and measured.units_per_tick == 1e9 / load_target(board).clock_hz
    assert len(set(measured.run_ticks)) == 1  # the timer is realigned before each run
    total = measured.run_ticks[-1]
    assert abs(sum(measured.layer_ticks) - total) <= 0.001 * total
