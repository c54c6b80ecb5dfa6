"""A guide through the design document, section by section, as short runnable programs.

Each ``section_*`` function is one stop of ``docs/guide.md``: it computes what the
document describes, *checks* it (an assertion that must hold), and draws the picture the
guide shows into ``out`` (PNG, with matplotlib). ``tests/test_guide.py`` runs every
section, so the guide cannot drift from the code.

Run: python examples/guide_design_document.py [OUT_DIR] [--full]
(``--full`` trains on the whole of Fashion-MNIST where a section uses it; the default is a
quick subset.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import dendrite as tf  # noqa: E402
from dendrite import explain, ops  # noqa: E402
from dendrite.core import GradientTape, Tensor  # noqa: E402
from dendrite.testing.gradcheck import gradcheck  # noqa: E402


def _fashion(count: int):
    (x, y), (xt, yt) = tf.keras.datasets.fashion_mnist.load_data()
    return (
        x[:count].astype("float32") / 255.0,
        y[:count],
        xt[:2000].astype("float32") / 255.0,
        yt[:2000],
    )


# %% 2.1-2.3, 4.1: the neuron y = f(sum_i w_i x_i + b) and its activation functions
def section_neuron_and_activations(out: Path, quick: bool = True) -> dict:
    """sigmoid, tanh and ReLU with their derivatives, the derivatives from dendrite's
    autodiff checked against the closed forms (sigma' = sigma (1 - sigma), tanh' = 1 -
    tanh^2, relu' = [z > 0])."""
    z = np.linspace(-4, 4, 401)
    closed = {
        "sigmoid": (1 / (1 + np.exp(-z)), lambda s: s * (1 - s)),
        "tanh": (np.tanh(z), lambda t: 1 - t**2),
        "relu": (np.maximum(z, 0), lambda r: (z > 0).astype(float)),
    }
    figure, axes = plt.subplots(1, 3, figsize=(10, 3))
    for axis, (name, (value, derivative)) in zip(axes, closed.items()):
        x = Tensor(z)
        with GradientTape() as tape:
            tape.watch(x)
            y = getattr(ops, name)(x)
        grad = tape.gradient(y, x).numpy()
        np.testing.assert_allclose(y.numpy(), value, atol=1e-12)
        np.testing.assert_allclose(grad, derivative(value), atol=1e-12)
        axis.plot(z, value, label=name)
        axis.plot(z, grad, "--", label=f"{name}' (autodiff)")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    # One neuron, by the formula and by a Dense(1) layer with the same weights.
    w, b, inputs = np.array([0.5, -1.0, 2.0]), 0.1, np.array([[1.0, 2.0, 3.0]])
    neuron = tf.keras.layers.Dense(1, activation="sigmoid", dtype="float64")
    neuron.build((None, 3))
    neuron.set_weights([w[:, None], np.array([b])])
    by_formula = 1 / (1 + np.exp(-(inputs @ w + b)))
    np.testing.assert_allclose(neuron(inputs).numpy()[:, 0], by_formula)
    figure.tight_layout()
    figure.savefig(out / "activations.png", dpi=80)
    plt.close(figure)
    return {"neuron_output": float(by_formula[0])}


# %% 2.4-2.5, 4.2-4.3: a loss surface and gradient descent on it
def section_loss_surface(out: Path, quick: bool = True) -> dict:
    """MSE of y = w x + b on noisy data, as a surface over (w, b), and the path of
    gradient descent w <- w - alpha dL/dw from a far start, each step's gradient from a
    GradientTape."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 64)
    y = 2.0 * x - 0.5 + rng.normal(0, 0.1, 64)
    w = tf.Variable(np.array(-2.0))
    b = tf.Variable(np.array(2.0))
    path, alpha = [], 0.3
    for _ in range(60):
        with GradientTape() as tape:
            loss = ops.mean(ops.square(w * x + b - y))
        dw, db = tape.gradient(loss, [w, b])
        path.append((float(w.numpy()), float(b.numpy()), float(loss.numpy())))
        w.assign(w.numpy() - alpha * dw.numpy())
        b.assign(b.numpy() - alpha * db.numpy())
    best_w, best_b = np.polyfit(x, y, 1)  # the least-squares minimum
    assert abs(path[-1][0] - best_w) < 0.05 and abs(path[-1][1] - best_b) < 0.05
    ws, bs = np.meshgrid(np.linspace(-3, 4, 80), np.linspace(-2, 3, 80))
    surface = ((ws[..., None] * x + bs[..., None] - y) ** 2).mean(axis=-1)
    figure, axis = plt.subplots(figsize=(5, 4))
    axis.contour(ws, bs, surface, levels=30, cmap="viridis")
    track = np.array(path)
    axis.plot(track[:, 0], track[:, 1], "o-", color="C3", ms=3, label="gradient descent")
    axis.plot(best_w, best_b, "k*", ms=12, label="minimum")
    axis.set_xlabel("w")
    axis.set_ylabel("b")
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "loss_surface.png", dpi=80)
    plt.close(figure)
    return {"final_loss": path[-1][2], "w": path[-1][0], "b": path[-1][1]}


# %% 3.1-3.2: forward and backward propagation of a two-layer network, by hand
def section_backprop_by_hand(out: Path, quick: bool = True) -> dict:
    """h = relu(x W1 + b1), p = h W2 + b2, L = mean((p - y)^2). The chain rule written out:
    dL/dp = 2 (p - y) / N; dW2 = h^T dL/dp; db2 = sum dL/dp; dh = dL/dp W2^T;
    dz1 = dh * [z1 > 0]; dW1 = x^T dz1; db1 = sum dz1. Compared with dendrite's autodiff,
    whose gradient is itself checked against finite differences by ``gradcheck``."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
    w1, b1 = rng.normal(size=(3, 4)), rng.normal(size=4)
    w2, b2 = rng.normal(size=(4, 1)), rng.normal(size=1)
    # forward
    z1 = x @ w1 + b1
    h = np.maximum(z1, 0)
    p = h @ w2 + b2
    loss = np.mean((p - y) ** 2)
    # backward, by hand
    dp = 2 * (p - y) / p.size
    grads_by_hand = {"w2": h.T @ dp, "b2": dp.sum(0)}
    dz1 = (dp @ w2.T) * (z1 > 0)
    grads_by_hand.update({"w1": x.T @ dz1, "b1": dz1.sum(0)})

    def network(w1_, b1_, w2_, b2_):
        hidden = ops.relu(ops.matmul(Tensor(x), w1_) + b1_)
        return ops.mean(ops.square(ops.matmul(hidden, w2_) + b2_ - y))

    params = [Tensor(a) for a in (w1, b1, w2, b2)]
    with GradientTape() as tape:
        tape.watch(params)
        auto_loss = network(*params)
    auto = dict(zip(("w1", "b1", "w2", "b2"), tape.gradient(auto_loss, params)))
    np.testing.assert_allclose(auto_loss.numpy(), loss)
    for name, grad in grads_by_hand.items():
        np.testing.assert_allclose(auto[name].numpy(), grad, rtol=1e-10, atol=1e-12)
    assert gradcheck(network, w1, b1, w2, b2)
    return {"loss": float(loss)}


# %% 3.4: the training loop written out with a GradientTape, then as fit
def section_training_loop(out: Path, quick: bool = True) -> dict:
    """The document's five steps (initialise; forward and loss; backward; update; repeat)
    in a loop of our own, then the same model trained by ``fit``."""
    x, y, xt, yt = _fashion(6000 if quick else 60000)
    x, xt = x.reshape(-1, 784), xt.reshape(-1, 784)
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(128, activation="relu", input_shape=(784,)),  # 1. init
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()
    optimizer = tf.keras.optimizers.Adam(1e-3)
    losses = []
    for epoch in range(2):  # 5. repeat
        order = np.random.default_rng(epoch).permutation(len(x))
        for start in range(0, len(x), 32):
            rows = order[start : start + 32]
            with GradientTape() as tape:
                loss = loss_fn(y[rows], model(x[rows], training=True))  # 2. forward + loss
            grads = tape.gradient(loss, model.trainable_variables)  # 3. backward
            optimizer.apply_gradients(zip(grads, model.trainable_variables))  # 4. update
            losses.append(float(loss.numpy()))
    hand_accuracy = float(np.mean(np.argmax(model.predict(xt, verbose=0), 1) == yt))
    tf.keras.utils.set_random_seed(0)
    fitted = tf.keras.models.clone_model(model)
    fitted.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    fitted.fit(x, y, epochs=2, batch_size=32, verbose=0)
    fit_accuracy = fitted.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
    assert hand_accuracy > 0.75 and fit_accuracy > 0.75, (hand_accuracy, fit_accuracy)
    figure, axis = plt.subplots(figsize=(5, 3))
    axis.plot(np.convolve(losses, np.ones(20) / 20, mode="valid"))
    axis.set_xlabel("step")
    axis.set_ylabel("loss (moving average)")
    figure.tight_layout()
    figure.savefig(out / "training_loop.png", dpi=80)
    plt.close(figure)
    return {"hand_loop_accuracy": hand_accuracy, "fit_accuracy": fit_accuracy}


# %% 5.1: the document's program
def section_document_program(out: Path, quick: bool = True) -> dict:
    """Dense 128 relu on 784 inputs, Dense 10 softmax, Adam, sparse categorical
    cross-entropy (5 epochs on all 60,000 images with --full: about 87% test accuracy;
    the quick run: 1 epoch on 12,000)."""
    x, y, xt, yt = _fashion(12000 if quick else 60000)
    x, xt = x.reshape(-1, 784), xt.reshape(-1, 784)
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(128, activation="relu", input_shape=(784,)),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1 if quick else 5, verbose=0)
    accuracy = model.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
    assert accuracy > (0.78 if quick else 0.86), accuracy
    tf.keras.utils.plot_model(
        model, out / "document_model.png", show_shapes=True, dpi=70
    ) if hasattr(tf.keras.utils, "plot_model") else _plot_model(model, out / "document_model.png")
    return {"test_accuracy": accuracy}


def _plot_model(model, path):
    from dendrite.visualize import plot_model

    plot_model(model, path, show_shapes=True, dpi=70)


# %% 9.3: over-fitting, and L1/L2/dropout against it
def section_overfitting(out: Path, quick: bool = True) -> dict:
    """A wide network on 500 images over-fits: training loss falls while validation loss
    rises. L2 penalties and dropout narrow the gap."""
    x, y, xt, yt = _fashion(500)
    x, xt = x.reshape(-1, 784), xt.reshape(-1, 784)
    variants = {
        "plain": {},
        "L2 1e-3": {"kernel_regularizer": tf.keras.regularizers.l2(1e-3)},
        "dropout 0.5": {"dropout": 0.5},
    }
    curves, gaps = {}, {}
    for name, options in variants.items():
        tf.keras.utils.set_random_seed(0)
        dropout = options.pop("dropout", None)
        hidden = [tf.keras.layers.Dense(256, activation="relu", input_shape=(784,), **options)]
        if dropout:
            hidden.append(tf.keras.layers.Dropout(dropout))
        model = tf.keras.Sequential(hidden + [tf.keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        history = model.fit(
            x, y, epochs=25 if quick else 60, validation_data=(xt[:1000], yt[:1000]), verbose=0
        ).history
        curves[name] = history
        gaps[name] = history["val_loss"][-1] - model.evaluate(x, y, verbose=0)
    assert gaps["L2 1e-3"] < gaps["plain"] and gaps["dropout 0.5"] < gaps["plain"], gaps
    figure, axes = plt.subplots(1, 3, figsize=(11, 3), sharey=True)
    for axis, (name, history) in zip(axes, curves.items()):
        axis.plot(history["loss"], label="train")
        axis.plot(history["val_loss"], label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.legend()
    figure.tight_layout()
    figure.savefig(out / "overfitting.png", dpi=80)
    plt.close(figure)
    return {"gaps": {k: float(v) for k, v in gaps.items()}}


# %% 9.2: the learning rate, found by experiment
def section_learning_rate(out: Path, quick: bool = True) -> dict:
    x, y, _, _ = _fashion(12000)
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(128, activation="relu", input_shape=(784,)),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    result = explain.find_learning_rate(model, x.reshape(-1, 784), y)
    assert 1e-4 <= result.suggestion <= 1e-2, result.suggestion
    result.plot(out / "lr_finder.png")
    plt.close("all")
    return {"suggestion": result.suggestion}


# %% 6.1 and 8.1: images, and looking inside a trained CNN
def section_explain_cnn(out: Path, quick: bool = True) -> dict:
    """A small CNN on Fashion-MNIST, then what it looks at: Grad-CAM on its last
    convolution, integrated gradients (complete: they sum to f(x) - f(0)) and occlusion."""
    x, y, xt, yt = _fashion(6000 if quick else 60000)
    x, xt = x[..., None], xt[..., None]
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((28, 28, 1)),
            tf.keras.layers.Conv2D(16, 3, activation="relu"),
            tf.keras.layers.MaxPooling2D(2),
            tf.keras.layers.Conv2D(32, 3, activation="relu", name="last_conv"),
            tf.keras.layers.MaxPooling2D(2),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    accuracy = model.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.75, accuracy
    images, labels = xt[:4], yt[:4]
    # Grad-CAM weighs channels by their mean gradient; in a small network that weighted sum
    # is often negative everywhere (an empty map). Grad-CAM++ keeps only positive
    # gradients, so its map is not empty; both are drawn.
    cam = explain.grad_cam(model, images, labels, upsample=True)
    cam_pp = explain.grad_cam_plus_plus(model, images, labels, upsample=True)
    assert cam_pp.reshape(4, -1).max(axis=1).min() > 0
    ig, delta = explain.integrated_gradients(model, images, labels, steps=64, return_delta=True)
    logits = model.predict(images, verbose=0)[np.arange(4), labels]
    base = model.predict(np.zeros_like(images), verbose=0)[np.arange(4), labels]
    relative = np.abs(delta) / np.abs(logits - base)
    # Completeness: sum(IG) = f(x) - f(0) up to the quadrature's error, which a ReLU
    # network's kinks make O(1/steps): under 1% in the median at 64 steps, and for every
    # image at 256.
    assert np.median(relative) < 0.01, relative
    _, fine = explain.integrated_gradients(model, images, labels, steps=256, return_delta=True)
    assert (np.abs(fine) / np.abs(logits - base)).max() < 0.01
    occ = explain.occlusion(model, images, labels, window=6, stride=3)
    names = [
        "T-shirt",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Boot",
    ]
    titles = [names[k] for k in labels]
    explain.plot(cam, images, out / "grad_cam.png", titles=titles)
    explain.plot(cam_pp, images, out / "grad_cam_plus_plus.png", titles=titles)
    explain.plot(ig, images, out / "integrated_gradients.png", titles=titles)
    explain.plot(occ, images, out / "occlusion.png", titles=titles)
    plt.close("all")
    return {"accuracy": accuracy, "ig_completeness_error_64": float(relative.max())}


# %% 6.2-6.3: sequences and text
def section_sequences_and_text(out: Path, quick: bool = True) -> dict:
    """Text: short sentences whose sentiment is decided by one word ("good" or "bad") among
    neutral ones. TextVectorization turns them into token ids, Embedding(mask_zero) and an
    LSTM read them (the padding masked), Dense(sigmoid) decides. Occlusion, covering one
    token at a time with the padding id, finds the deciding word: for every sentence the
    token whose removal moves the prediction most is "good" or "bad"."""
    rng = np.random.default_rng(0)
    neutral = "the a movie film story plot actor was is very quite rather long short".split()
    sentences, labels = [], []
    for _ in range(1200 if quick else 4000):
        words = list(rng.choice(neutral, size=rng.integers(3, 9)))
        label = int(rng.integers(0, 2))
        words.insert(int(rng.integers(0, len(words) + 1)), "good" if label else "bad")
        sentences.append(" ".join(words))
        labels.append(label)
    y = np.array(labels, dtype="float32")
    vectorize = tf.keras.layers.TextVectorization(output_sequence_length=10)
    vectorize.adapt(sentences)
    tokens = vectorize(np.array(sentences)).numpy()
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((10,), dtype="int64"),
            tf.keras.layers.Embedding(len(vectorize.get_vocabulary()), 8, mask_zero=True),
            tf.keras.layers.LSTM(16),
            tf.keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(tokens[:1000], y[:1000], epochs=8, batch_size=32, verbose=0)
    accuracy = model.evaluate(tokens[1000:], y[1000:], verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.95, accuracy
    sample = tokens[1000:1006]
    # How much p("good") moves when one token is covered by the padding id: the deciding
    # word moves it most, up for "bad" (covered, the sentence turns neutral), down for "good".
    attributions = explain.occlusion(model, sample, target=0, window=1, fill=0)
    vocabulary = vectorize.get_vocabulary()
    words = [[vocabulary[t] for t in row] for row in sample]
    for row, attribution in zip(words, attributions):
        assert row[int(np.argmax(np.abs(attribution)))] in ("good", "bad"), (row, attribution)
    explain.plot(attributions, path=out / "text_occlusion.png", kind="text", tokens=words)
    plt.close("all")
    return {"accuracy": accuracy}


SECTIONS = [
    section_neuron_and_activations,
    section_loss_surface,
    section_backprop_by_hand,
    section_training_loop,
    section_document_program,
    section_overfitting,
    section_learning_rate,
    section_explain_cnn,
    section_sequences_and_text,
]


def main(argv: list[str]) -> None:
    args = [a for a in argv if not a.startswith("--")]
    out = Path(args[0] if args else "guide_pictures")
    out.mkdir(parents=True, exist_ok=True)
    for section in SECTIONS:
        print(section.__name__, section(out, quick="--full" not in argv))


if __name__ == "__main__":
    main(sys.argv[1:])
