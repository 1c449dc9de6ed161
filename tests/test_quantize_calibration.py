"""Calibration data: the reader, and clear errors for data or models that do not fit."""
from __future__ import annotations

import numpy as np
import pytest

from edgeprune.models import data, zoo
from edgeprune.models.data import DataError
from edgeprune.quantize import quantize
from edgeprune.quantize.calibration import ArrayReader, check_samples
from edgeprune.quantize.errors import CalibrationDataError, QuantizeError

SHAPE = zoo.input_shape("digits_cnn")


def test_reader_feeds_one_sample_at_a_time_up_to_the_count():
    x = np.arange(5 * 64, dtype=np.float32).reshape(5, 1, 8, 8)
    reader = ArrayReader(x, "input", samples=3)
    batches = list(reader)
    assert len(reader) == 3 and len(batches) == 3
    assert all(b["input"].shape == (1, 1, 8, 8) for b in batches)
    np.testing.assert_array_equal(batches[2]["input"][0], x[2])
    assert reader.get_next() is None


def test_wrong_shape_names_expected_and_given():
    with pytest.raises(CalibrationDataError, match=r"shape \(10, 8, 8\).*\(N, 1, 8, 8\)"):
        check_samples(np.zeros((10, 8, 8), np.float32), SHAPE)


def test_wrong_dtype_names_expected_and_given():
    with pytest.raises(CalibrationDataError, match="dtype uint8.*float32"):
        check_samples(np.zeros((10, 1, 8, 8), np.uint8), SHAPE)


def test_float64_is_accepted_as_float32():
    assert check_samples(np.zeros((2, 1, 8, 8)), SHAPE).dtype == np.float32


def test_api_rejects_wrong_calibration_array_before_writing(tmp_path):
    out = tmp_path / "m.onnx"
    with pytest.raises(CalibrationDataError, match=r"\(N, 1, 8, 8\)"):
        quantize("digits_cnn", np.zeros((10, 64), np.float32), out)
    assert not out.exists()


def test_npz_without_labels_names_the_missing_key(tmp_path):
    path = tmp_path / "x_only.npz"
    np.savez(path, x=np.zeros((30, 1, 8, 8), np.float32))
    with pytest.raises(DataError, match=r"missing key\(s\) \['y'\]"):
        quantize("digits_cnn", path, tmp_path / "m.onnx")


def test_npz_with_integer_pixels_is_refused(tmp_path):
    path = tmp_path / "pixels.npz"
    np.savez(path, x=np.zeros((30, 1, 8, 8), np.uint8), y=np.arange(30) % 10)
    with pytest.raises(CalibrationDataError, match="pixels.npz: x has dtype uint8"):
        quantize("digits_cnn", path, tmp_path / "m.onnx")


def test_unknown_data_and_model_and_method(tmp_path):
    with pytest.raises(CalibrationDataError, match="'digits' or an existing .npz"):
        quantize("digits_cnn", "mnist", tmp_path / "m.onnx")
    with pytest.raises(QuantizeError, match="neither a zoo model"):
        quantize("lenet", "digits", tmp_path / "m.onnx")
    with pytest.raises(QuantizeError, match="minmax, percentile, entropy"):
        quantize("digits_cnn", "digits", tmp_path / "m.onnx", method="mse")


def test_quantized_model_is_refused(tmp_path):
    first = quantize("digits_cnn", "digits", tmp_path / "a.onnx", samples=10, eval_samples=10)
    with pytest.raises(QuantizeError, match="already quantized"):
        quantize(first.output, "digits", tmp_path / "b.onnx")


def test_user_npz_calibrates_on_train_split_and_evaluates_on_test_split(tmp_path):
    digits = data.digits(SHAPE)
    path = tmp_path / "mine.npz"
    np.savez(path, x=digits.x_train, y=digits.y_train)
    report = quantize("digits_cnn", path, tmp_path / "m.onnx", samples=20, evaluation=path)
    held_out = data.load_npz(path, SHAPE)
    assert report.calibration == report.evaluation == str(path)
    assert report.calibration_samples == 20
    assert report.evaluation_samples == len(held_out.x_test)
    assert report.float_accuracy is not None
