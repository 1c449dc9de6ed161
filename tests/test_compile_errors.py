"""Bad input gets a clear error that says what to do, and leaves no half-written output."""
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgeprune.compile.api import compile_model
from edgeprune.compile.frontend import SUPPORTED_OPS
from edgeprune.errors import (DeviceError, ModelTooLargeError, ToolchainMissingError,
                              UnknownTargetError, UnsupportedOpError)
from edgeprune.profile.devices import open_device
from edgeprune.targets import load_target


def _onnx_with(op_type: str, path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["h"], name="first"),
         helper.make_node(op_type, ["h"], ["y"], name="odd_one")], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_unsupported_op_names_op_node_and_what_is_supported(tmp_path):
    with pytest.raises(UnsupportedOpError) as err:
        compile_model(_onnx_with("Erf", tmp_path / "erf.onnx"), "mps2-an386", tmp_path / "out")
    message = str(err.value)
    assert "Erf" in message and "'odd_one'" in message
    assert all(op in message for op in SUPPORTED_OPS)
    assert not (tmp_path / "out").exists()


def test_unknown_board_lists_the_known_ones(tmp_path):
    with pytest.raises(UnknownTargetError) as err:
        compile_model("digits_cnn", "stm32-nope", tmp_path / "out")
    assert "stm32-nope" in str(err.value) and "mps2-an386" in str(err.value) and "mps3-an547" in str(err.value)


def test_missing_toolchain_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    with pytest.raises(ToolchainMissingError) as err:
        compile_model("digits_cnn", "mps2-an386", tmp_path / "out")
    assert "arm-none-eabi-gcc" in str(err.value) and "gcc-arm-none-eabi" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_model_larger_than_the_board_says_by_how_much(tmp_path, monkeypatch):
    board_dir = tmp_path / "boards"
    board_dir.mkdir()
    text = load_target("mps2-an386").source.read_text()
    text = text.replace("flash = { origin = 0x00000000, length = 0x400000 }",
                        "flash = { origin = 0x00000000, length = 0x8000 }")  # 32 KiB
    (board_dir / "tiny-m4.toml").write_text(text)
    monkeypatch.setenv("EDGEPRUNE_TARGETS_PATH", str(board_dir))
    with pytest.raises(ModelTooLargeError) as err:
        compile_model("digits_cnn", "tiny-m4", tmp_path / "out")  # 57 KB of weights
    message = str(err.value)
    assert "tiny-m4" in message and "flash by" in message
    overflow = int(message.split("flash by ")[1].split(" bytes")[0].replace(",", ""))
    assert 57_512 - 32_768 < overflow < 57_512 - 32_768 + 16_384  # weights minus flash, plus code
    assert not (tmp_path / "out").exists()


def test_existing_output_survives_a_failed_compile(tmp_path, compiled):
    out = tmp_path / "out"
    good = compile_model(compiled("digits_cnn").onnx, "mps2-an386", out)
    before = good.elf.read_bytes()
    with pytest.raises(UnsupportedOpError):
        compile_model(_onnx_with("Erf", tmp_path / "erf.onnx"), "mps2-an386", out)
    assert good.elf.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.qemu
def test_qemu_that_does_not_finish_is_stopped_with_its_output(compiled):
    model = compiled("digits_cnn")
    x = np.zeros(model.manifest["inputs"][0]["shape"], np.float32)
    with pytest.raises(DeviceError) as err:
        # 100,000 inferences of 1.5 M instructions each cannot finish in 2 s.
        with open_device("qemu:mps2-an386?transport=semihosting", run_timeout=2) as device:
            device.prepare(model.path)
            device.run([x], 100_000)
    message = str(err.value)
    assert "did not finish within 2 s" in message and "\nEP_RUN " in message  # the tail of its output


def test_the_c_backend_takes_the_portable_int8_kernels_and_says_so(tmp_path):
    from tests.onnx_op_models import MODELS, quantized

    model = compile_model(quantized(MODELS["Conv"]["3x3 p1"]()), "mps2-an386", tmp_path / "c", backend="c")
    assert any("--backend c takes the portable int8 kernels" in note for note in model.manifest["notes"])
    assert model.manifest["options"]["kernels"] == "auto" and "layer" not in model.manifest["steps"][0]
    assert (tmp_path / "c" / "src" / "kernels.c").is_file() and model.elf.is_file()
