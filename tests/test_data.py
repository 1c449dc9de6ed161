"""Digits data set shaping and splits; user .npz files and their errors."""
import numpy as np
import pytest

from edgeprune.models import data


def test_digits_split_is_fixed_disjoint_and_scaled():
    a, b = data.digits(), data.digits()
    assert a.x_train.shape[1:] == (1, 8, 8) and a.x_train.dtype == np.float32
    assert len(a.x_train) + len(a.x_val) + len(a.x_test) == 1797
    assert len(a.x_test) == pytest.approx(0.2 * 1797, abs=1)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    flat = {x.tobytes() for x in a.x_train}
    assert sum(x.tobytes() in flat for x in a.x_test) < 5  # digits has a few duplicate images
    assert 0.0 <= a.x_train.min() and a.x_train.max() == 1.0
    assert set(np.unique(a.y_test)) == set(range(10)) and a.num_classes == 10


@pytest.mark.parametrize("shape", [(1, 1, 49, 10), (1, 3, 32, 32), (1, 640)])
def test_digits_shaped_for_mlperf_inputs(shape):
    ds = data.digits(shape)
    assert ds.x_val.shape == (len(ds.y_val), *shape[1:])
    assert 0.0 <= ds.x_val.min() and ds.x_val.max() <= 1.0


def test_channels_are_copies_and_features_tile():
    rgb = data.digits((1, 3, 32, 32)).x_test
    np.testing.assert_array_equal(rgb[:, 0], rgb[:, 2])
    flat = data.digits((1, 640)).x_test
    np.testing.assert_array_equal(flat[:, :64], flat[:, 64:128])
    np.testing.assert_array_equal(flat[:, :64], data.digits().x_test.reshape(-1, 64))


def test_binary_task_is_digit_below_five():
    ten, two = data.digits(), data.digits(num_classes=2)
    np.testing.assert_array_equal(two.y_test, (ten.y_test < 5).astype(np.int64))


def test_npz_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.random((100, 4, 5)), y=np.repeat(np.arange(4), 25))
    ds = data.load_npz(path, (1, 4, 5))
    assert ds.x_train.dtype == np.float32 and ds.x_train.shape[1:] == (4, 5)
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 100


def test_npz_missing_key(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((10, 4)))
    with pytest.raises(data.DataError, match=r"missing key\(s\) \['y'\]"):
        data.load_npz(path, (1, 4))


def test_npz_wrong_shape(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((10, 3)), y=np.zeros(10, dtype=int))
    with pytest.raises(data.DataError, match=r"sample shape \(3,\), model expects \(4,\)"):
        data.load_npz(path, (1, 4))


def test_npz_labels_must_match_samples(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((10, 4)), y=np.zeros(9, dtype=int))
    with pytest.raises(data.DataError, match="one label per sample"):
        data.load_npz(path, (1, 4))


def test_npz_not_a_file(tmp_path):
    with pytest.raises(data.DataError, match="not a readable"):
        data.load_npz(tmp_path / "absent.npz", (1, 4))
