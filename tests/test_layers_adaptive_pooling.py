"""Adaptive pooling against PyTorch's adaptive pools, its windows, and its gradients."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as keras
from dendrite.layers.adaptive_pooling import adaptive_windows
from dendrite.testing.gradcheck import gradcheck

L = keras.layers


def test_windows_follow_floor_and_ceil() -> None:
    for length in range(1, 12):
        for size in range(1, 9):
            windows = adaptive_windows(length, size)
            assert windows[0][0] == 0 and windows[-1][1] == length
            for i, (start, end) in enumerate(windows):
                assert start == (i * length) // size
                assert end == -(-((i + 1) * length) // size)
                assert end > start


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kind", ["Average", "Max"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_torch(rank: int, kind: str, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(rank)
    spatial = (7, 5, 6)[:rank]
    sizes = (3, 4, 2)[:rank]  # 4 > 5? no: sizes over and under half the length
    x = rng.standard_normal((2, 3, *spatial)).astype(dtype)  # channels_first, as torch
    pool = getattr(
        torch.nn.functional, f"adaptive_{'avg' if kind == 'Average' else 'max'}_pool{rank}d"
    )
    expected = pool(torch.from_numpy(x), sizes).numpy()
    layer_cls = getattr(L, f"Adaptive{kind}Pooling{rank}D")
    first = layer_cls(sizes, data_format="channels_first", dtype=dtype)(x)
    last = layer_cls(sizes, dtype=dtype)(np.moveaxis(x, 1, -1))
    assert first.dtype == np.dtype(dtype)
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(first.data, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(np.moveaxis(last.data, -1, 1), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", ["Average", "Max"])
def test_gradients_float64_and_larger_output_than_input(kind: str) -> None:
    rng = np.random.default_rng(7)
    layer = getattr(L, f"Adaptive{kind}Pooling2D")((3, 5), dtype="float64")
    x = rng.standard_normal((1, 4, 3, 2))  # 5 > 3: windows overlap and repeat
    assert layer(x).shape == (1, 3, 5, 2)
    gradcheck(layer, x, name=f"Adaptive{kind}Pooling2D")


def test_config_and_shapes() -> None:
    layer = L.AdaptiveMaxPooling3D(2, data_format="channels_first")
    config = layer.get_config()
    assert config["output_size"] == [2, 2, 2] and config["data_format"] == "channels_first"
    assert L.AdaptiveMaxPooling3D.from_config(config).output_size == (2, 2, 2)
    assert layer.compute_output_shape((None, 3, 9, 9, 9)) == (None, 3, 2, 2, 2)
    with pytest.raises(ValueError, match=layer.name):
        layer(np.zeros((1, 3, 4, 4)))
