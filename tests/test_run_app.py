"""The one parser of the EP_ report lines, on what both run applications print: the semihosting
firmware (targets/cortex-m/ep_main_semihost.c) and the Linux boards' (targets/linux/ep_main_linux.c)."""
import numpy as np
import pytest

from edgeprune.errors import DeviceError
from edgeprune.profile.run_app import input_payload, parse_report, split_outputs

FIRMWARE = "boot\nEP_RUN 0 5000\nEP_RUN 1 4990\nEP_LAYER 1 3000\nEP_LAYER 0 1990\nEP_STACK 0 412\n"
LINUX = ("EP_CLOCK insn\nEP_RUN 0 7000\nEP_RUN 1 7002\nEP_RUN 2 7001\nEP_LAYER 0 4000\n"
         "EP_LAYER 1 3001\nEP_STACK 0 0\nEP_TIMER_COST 0 12\n")


def test_firmware_lines():
    report = parse_report(FIRMWARE, 2, "the firmware")
    assert (report.clock, report.run_ticks, report.layer_ticks, report.stack_bytes, report.timer_cost) == \
        ("none", [5000, 4990], [1990, 3000], 412, 0)


def test_linux_application_lines():
    report = parse_report(LINUX, 3, "the executable")
    assert (report.clock, report.run_ticks, report.layer_ticks, report.stack_bytes, report.timer_cost) == \
        ("insn", [7000, 7002, 7001], [4000, 3001], 0, 12)


def test_missing_runs_name_the_source_and_show_the_output():
    with pytest.raises(DeviceError, match=r"the firmware reported 2 of 3 runs; output:\n(.|\n)*EP_STACK 0 412"):
        parse_report(FIRMWARE, 3, "the firmware")


def test_input_and_output_files_round_trip():
    x, y = np.arange(6, dtype=np.int8).reshape(2, 3), np.array([1.5, -2.0], np.float32)
    payload = input_payload([x, y.tobytes()], 4)
    assert payload[:4] == np.uint32(4).tobytes() and payload[4:10] == x.tobytes()
    specs = [{"shape": [2, 3], "dtype": "int8", "bytes": 6}, {"shape": [2], "dtype": "float32", "bytes": 8}]
    out = split_outputs(payload[4:], specs)
    assert np.array_equal(out[0], x) and np.array_equal(out[1], y)
    with pytest.raises(DeviceError, match="output.bin has 13 bytes"):
        split_outputs(payload[4:-1], specs)
