"""The profiling protocol's constants in Python (frames.py, client.py, the code generator) equal
the device's C headers (targets/runtime/ep_protocol.h, ep_model.h), which are written by hand on
both sides."""
import re

from edgeprune.compile.codegen import _WIRE_DTYPES
from edgeprune.profile import client, frames
from edgeprune.targets import TARGETS_DIR

RUNTIME = TARGETS_DIR / "runtime"


def _c_constants(header: str) -> dict[str, int]:
    """`#define EP_X 0x12u` and `EP_X = 3,` enum entries of a header, by name."""
    text = (RUNTIME / header).read_text()
    found = re.findall(r"#define\s+(EP_\w+)\s+(0x[0-9a-fA-F]+|\d+)u?\b", text)
    found += re.findall(r"^\s*(EP_\w+)\s*=\s*(0x[0-9a-fA-F]+|\d+)\s*,?", text, flags=re.M)
    return {name: int(value, 0) for name, value in found}


def _enum(constants: dict[str, int], prefix: str) -> dict[str, int]:
    return {name[len(prefix):]: value for name, value in constants.items() if name.startswith(prefix)}


def test_frame_layout_matches_ep_protocol_h():
    c = _c_constants("ep_protocol.h")
    assert (frames.SYNC, frames.REPLY, frames.VERSION) == (c["EP_PROTO_SYNC"], c["EP_PROTO_REPLY"],
                                                           c["EP_PROTO_VERSION"])
    assert (frames.HEADER.size, frames.CRC.size) == (c["EP_PROTO_HEADER_BYTES"], c["EP_PROTO_CRC_BYTES"])


def test_commands_and_statuses_match_ep_protocol_h():
    c = _c_constants("ep_protocol.h")
    assert {m.name: m.value for m in frames.Command} == _enum(c, "EP_CMD_")
    assert {m.name: m.value for m in frames.Status} == _enum(c, "EP_STATUS_")


def test_wire_dtypes_match_ep_model_h():
    dtypes = _enum(_c_constants("ep_model.h"), "EP_DTYPE_")
    assert client.DTYPES == {value: name.lower() for name, value in dtypes.items()}
    assert _WIRE_DTYPES == {name.lower(): f"EP_DTYPE_{name}" for name in dtypes}
