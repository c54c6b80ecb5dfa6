"""dendrite.explain: each attribution method checked against a property it must have, on
small models trained here (a CNN on a synthetic dataset whose class depends on one known
image region, and a linear model)."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite import explain
from dendrite.core import GradientTape, Tensor

SIZE = 16
REGION = (slice(0, 8), slice(0, 8))  # the top-left quadrant decides the class


def _squares(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noise images with one bright 3x3 square: class 1 when the square lies in the
    top-left quadrant, class 0 when it lies in any other."""
    x = rng.uniform(0, 0.3, size=(count, SIZE, SIZE, 1)).astype("float32")
    y = rng.integers(0, 2, size=count)
    for i in range(count):
        while True:
            r, c = rng.integers(0, SIZE - 3, size=2)
            inside = r + 3 <= 8 and c + 3 <= 8
            if inside == bool(y[i]) and (inside or r >= 8 or c >= 8):
                break
        x[i, r : r + 3, c : c + 3, 0] = 1.0
    return x, y.astype("int64")


@pytest.fixture(scope="module")
def cnn():
    tf.keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x, y = _squares(2000, rng)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((SIZE, SIZE, 1)),
            tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            tf.keras.layers.MaxPooling2D(2),
            tf.keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv"),
            tf.keras.layers.GlobalAveragePooling2D(),
            tf.keras.layers.Dense(2),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(0.01),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=12, batch_size=32, verbose=0)
    xt, yt = _squares(200, np.random.default_rng(2))
    accuracy = model.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
    print("CNN test accuracy:", accuracy)
    assert accuracy > 0.95, accuracy
    return model, xt, yt


@pytest.fixture(scope="module")
def linear():
    tf.keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(256, 6)).astype("float32")
    w = rng.normal(size=(6, 3)).astype("float32")
    model = tf.keras.Sequential([tf.keras.Input((6,)), tf.keras.layers.Dense(3)])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05), loss="mse")
    model.fit(x, x @ w + 0.5, epochs=3, batch_size=32, verbose=0)
    return model, x[:10]


def _tape_gradient(model, x, target):
    inputs = Tensor(x)
    with GradientTape() as tape:
        tape.watch(inputs)
        out = model(inputs, training=False)
        onehot = np.zeros(out.shape, dtype="float32")
        onehot[np.arange(len(x)), target] = 1
        score = (out * onehot).sum()
    return tape.gradient(score, inputs).numpy()


def test_saliency_equals_the_gradient_tape_gradient(cnn):
    model, x, y = cnn
    got = explain.saliency(model, x[:8], y[:8])
    assert got.shape == x[:8].shape
    np.testing.assert_array_equal(got, _tape_gradient(model, x[:8], y[:8]))
    absolute = explain.saliency(model, x[:8], y[:8], absolute=True, reduce_channels=True)
    np.testing.assert_array_equal(absolute, np.abs(got)[..., 0])
    # gradient x input is the same gradient times the input.
    np.testing.assert_allclose(explain.gradient_x_input(model, x[:8], y[:8]), x[:8] * got)


def test_target_forms_agree(cnn):
    model, x, _ = cnn
    batch = x[:4]
    top = np.argmax(model.predict(batch, verbose=0), axis=1)
    by_none = explain.saliency(model, batch)
    by_array = explain.saliency(model, batch, top)
    by_callable = explain.saliency(
        model, batch, lambda out: (out * np.eye(2, dtype="float32")[top]).sum(axis=1)
    )
    np.testing.assert_array_equal(by_none, by_array)
    np.testing.assert_allclose(by_callable, by_array, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="out of range"):
        explain.saliency(model, batch, 5)


def test_integrated_gradients_are_complete_within_one_percent_at_64_steps(cnn):
    model, x, y = cnn
    batch, target = x[:8], y[:8]
    ig, delta = explain.integrated_gradients(model, batch, target, steps=64, return_delta=True)
    assert ig.shape == batch.shape
    logits = model.predict(batch, verbose=0)
    base = model.predict(np.zeros_like(batch), verbose=0)
    difference = logits[np.arange(8), target] - base[np.arange(8), target]
    total = ig.reshape(8, -1).sum(axis=1)
    relative = np.abs(total - difference) / np.abs(difference)
    print("IG completeness, relative error at 64 steps:", relative.max())
    assert relative.max() < 0.01, relative
    np.testing.assert_allclose(delta, total - difference, rtol=1e-3, atol=1e-4)
    # A constant baseline and another rule: still complete within 1%.
    ig2, delta2 = explain.integrated_gradients(
        model, batch, target, baseline=0.15, steps=64, method="riemann_middle", return_delta=True
    )
    base2 = model.predict(np.full_like(batch, 0.15), verbose=0)[np.arange(8), target]
    diff2 = logits[np.arange(8), target] - base2
    assert np.max(np.abs(delta2) / np.abs(diff2)) < 0.01


def test_integrated_gradients_on_a_linear_model_are_gradient_x_input(linear):
    model, x = linear
    ig = explain.integrated_gradients(model, x, 1, steps=4)
    np.testing.assert_allclose(ig, explain.gradient_x_input(model, x, 1), rtol=1e-5, atol=1e-6)


def test_grad_cam_highlights_the_region_that_decides_the_class(cnn):
    model, x, y = cnn
    positives = x[y == 1][:16]
    assert explain.find_last_conv(model).name == "last_conv"
    for method in (explain.grad_cam, explain.grad_cam_plus_plus):
        cam = method(model, positives, 1)
        assert cam.shape == (16, 8, 8)  # the last convolution's grid
        assert cam.min() >= 0 and np.isclose(cam.max(), 1.0)
        inside = cam[:, :4, :4].mean(axis=(1, 2))
        outside = (cam.sum(axis=(1, 2)) - cam[:, :4, :4].sum(axis=(1, 2))) / (64 - 16)
        ratio = (inside / outside).mean()
        peaks = [np.unravel_index(np.argmax(heat), heat.shape) for heat in cam]
        in_region = sum(r < 4 and c < 4 for r, c in peaks)
        print(method.__name__, f"inside/outside {ratio:.2f}, peaks in the region {in_region}/16")
        # The deciding quadrant (a quarter of the grid) is at least twice as hot as the
        # rest on average, and holds the map's peak for at least 12 of 16 images.
        assert ratio > 2.0, ratio
        assert in_region >= 12, peaks
    big = explain.grad_cam(model, positives[:2], 1, layer="last_conv", upsample=True)
    assert big.shape == (2, SIZE, SIZE)


def test_grad_cam_reads_a_conv_that_the_plan_fuses_with_its_pooling(cnn):
    """The first Conv2D runs fused with the MaxPooling after it; choosing it still works
    (the fusion is declined while its output is captured) and leaves the model unchanged."""
    model, x, y = cnn
    before = model.predict(x[:4], verbose=0)
    first = model.layers[0].name
    cam = explain.grad_cam(model, x[:4], 1, layer=first)
    assert cam.shape == (4, SIZE, SIZE)
    assert "call" not in model.layers[0].__dict__
    np.testing.assert_array_equal(model.predict(x[:4], verbose=0), before)


def test_occlusion_agrees_with_gradients_on_a_linear_model(linear):
    model, x = linear
    occ = explain.occlusion(model, x, 2, window=1, stride=1, fill=0.0)
    gxi = explain.gradient_x_input(model, x, 2)
    np.testing.assert_allclose(occ, gxi, rtol=1e-4, atol=1e-5)
    # ... and to the weights themselves: w_j x_j.
    kernel = model.layers[0].get_weights()[0][:, 2]
    np.testing.assert_allclose(occ, x * kernel, rtol=1e-4, atol=1e-5)


def test_occlusion_finds_the_square_on_the_cnn(cnn):
    model, x, y = cnn
    positives = x[y == 1][:6]
    occ = explain.occlusion(model, positives, 1, window=4, stride=2)
    assert occ.shape == positives.shape
    for image, drop in zip(positives, occ[..., 0]):
        square = image[..., 0] == 1.0
        assert drop[square].mean() > drop[~square].mean()


def test_smoothgrad_is_the_gradient_on_a_linear_model_and_repeatable(linear, cnn):
    model, x = linear
    np.testing.assert_allclose(
        explain.smoothgrad(model, x, 0, samples=5, noise=0.3, seed=0),
        explain.saliency(model, x, 0),
        rtol=1e-5,
        atol=1e-6,
    )
    cnn_model, images, labels = cnn
    a = explain.smoothgrad(cnn_model, images[:3], labels[:3], samples=8, seed=4)
    b = explain.smoothgrad(cnn_model, images[:3], labels[:3], samples=8, seed=4)
    assert a.shape == images[:3].shape
    np.testing.assert_array_equal(a, b)
    tiny = explain.smoothgrad(cnn_model, images[:3], labels[:3], samples=2, noise=1e-7, seed=0)
    plain = explain.saliency(cnn_model, images[:3], labels[:3])
    np.testing.assert_allclose(tiny, plain, rtol=1e-3, atol=1e-5)


def test_functional_and_subclassed_models(linear):
    seq, x = linear
    inputs = tf.keras.Input((6,))
    functional = tf.keras.Model(inputs, seq.layers[0](inputs))

    class Wrapped(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.inner = seq.layers[0]

        def call(self, inputs):
            return self.inner(inputs)

    expected = explain.saliency(seq, x, 1)
    np.testing.assert_array_equal(explain.saliency(functional, x, 1), expected)
    np.testing.assert_array_equal(explain.saliency(Wrapped(), x, 1), expected)


def test_plot_writes_pngs_for_images_text_and_sequences(cnn, tmp_path):
    pytest.importorskip("matplotlib")
    model, x, y = cnn
    cam = explain.grad_cam(model, x[:3], 1, upsample=True)
    explain.plot(cam, x[:3], tmp_path / "cam.png", titles=["a", "b", "c"])
    explain.plot(np.array([[0.1, -0.5, 0.9]]), path=tmp_path / "text.png", tokens=["a", "b", "c"])
    explain.plot(np.sin(np.arange(40.0))[None], np.arange(40.0)[None], tmp_path / "seq.png")
    for name in ("cam.png", "text.png", "seq.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
