"""The search's devices are written as `edgeprune profile` takes them: qemu:BOARD for a bare-metal
board, qemu-user:BOARD[?cpu=CORE] for a Cortex-A one; a Cortex-A candidate measured by the search
counts what `edgeprune profile` counts on the same device."""
import pytest

from edgeprune.profile.api import profile
from edgeprune.search.errors import SearchError
from edgeprune.search.measure import board_of, measure


@pytest.mark.parametrize("device, board", [
    ("qemu:mps2-an386", ("mps2-an386", None)),
    ("qemu-user:cortex-a53", ("cortex-a53", None)),
    ("qemu-user:cortex-a53?cpu=cortex-a72", ("cortex-a53", "cortex-a72")),
])
def test_board_of_takes_profile_devices(device, board):
    assert board_of(device) == board


@pytest.mark.parametrize("device, message", [
    ("qemu:cortex-a53", r"cortex-a53 is a Linux \(Cortex-A\) board; use qemu-user:cortex-a53"),
    ("qemu-user:mps2-an386", r"mps2-an386 is a bare-metal board; use qemu:mps2-an386"),
    ("serial:///dev/ttyACM0?board=nucleo-l4r5zi", r"measures on QEMU for now"),
])
def test_board_of_refuses_what_it_cannot_measure(device, message):
    with pytest.raises(SearchError, match=message):
        board_of(device)


@pytest.mark.qemu
@pytest.mark.slow  # compiles for the A53
def test_search_measures_a_cortex_a_candidate_as_profile_does(quantized, tmp_path):
    device = "qemu-user:cortex-a53?cpu=cortex-a72"
    measured = measure(quantized("digits_cnn"), device, tmp_path / "firmware")
    profiled = profile(tmp_path / "firmware", device, runs=1, store=False)
    assert profiled.measurement.unit == "instructions"
    assert measured.instructions == profiled.measurement.run_ticks[-1] * profiled.measurement.units_per_tick
    assert measured.layer_instructions == profiled.measurement.layers
    assert measured.relative_error < 0.05  # int8 outputs against onnxruntime, relative to their scale
