"""The search's devices are the device URLs `edgeprune profile` takes (its board named by the URL),
opened through the same `open_device`; a candidate measured by the search counts what
`edgeprune profile` counts on the same device, in the device's unit."""
import pytest

from edgeprune.profile.api import profile
from edgeprune.search.errors import SearchError
from edgeprune.search.measure import board_of, device_unit, measure


@pytest.mark.parametrize("device, board", [
    ("qemu:mps2-an386", "mps2-an386"),
    ("qemu-user:cortex-a53", "cortex-a53"),
    ("qemu-user:cortex-a53?cpu=cortex-a72", "cortex-a53"),
    ("serial:///dev/ttyACM0?board=nucleo-l4r5zi", "nucleo-l4r5zi"),
    ("socket://127.0.0.1:5555?board=mps2-an386", "mps2-an386"),
    ("ssh://pi@raspberry?board=cortex-a53", "cortex-a53"),
])
def test_board_of_takes_profile_devices(device, board):
    assert board_of(device) == board


@pytest.mark.parametrize("device, message", [
    ("qemu:cortex-a53", r"cortex-a53 is a Linux \(Cortex-A\) board; use qemu-user:cortex-a53"),
    ("qemu-user:mps2-an386", r"mps2-an386 is a bare-metal board; use qemu:mps2-an386"),
    ("serial:///dev/ttyACM0", r"names no board; add \?board=NAME"),
    ("ssh://pi@raspberry", r"names no board"),
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
    assert measured.latency == profiled.measurement.run_ticks[-1] * profiled.measurement.units_per_tick
    assert measured.layer_latency == profiled.measurement.layers
    assert (measured.unit, measured.method) == ("instructions", profiled.method)
    assert measured.relative_error < 0.05  # int8 outputs against onnxruntime, relative to their scale


@pytest.mark.parametrize("device, unit", [
    ("qemu:mps2-an386", "instructions"),
    ("qemu-user:cortex-a53", "instructions"),
    ("serial:///dev/ttyACM0?board=nucleo-l4r5zi", "cycles"),
    ("ssh://pi@raspberry?board=cortex-a53", "ns"),
])
def test_latency_is_labelled_by_the_device(device, unit):
    assert device_unit(device)[0] == unit
