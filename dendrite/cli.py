"""``dendrite train``: the design document's model on Fashion-MNIST (or MNIST).

    dendrite train [--epochs 5] [--batch-size 32] [--optimizer adam] [--lr LR]
                   [--hidden 128] [--dataset fashion_mnist|mnist] [--out DIR]

Trains with a progress bar, prints the test accuracy, and writes the weights
(``model.weights.safetensors``), the history (``history.json``) and the training curve
(``training_curve.png``, when matplotlib is installed) into DIR.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DATASETS = ("fashion_mnist", "mnist")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dendrite", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train the document's model and report accuracy")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--optimizer", default="adam")
    train.add_argument("--lr", type=float, default=None, help="learning rate (optimizer default)")
    train.add_argument("--hidden", type=int, default=128, help="units of the hidden layer")
    train.add_argument("--dataset", choices=DATASETS, default="fashion_mnist")
    train.add_argument("--validation-split", type=float, default=0.0)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default="runs/latest", help="directory for the outputs")
    train.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    return parser


def load_dataset(name: str) -> tuple:
    import dendrite

    module = getattr(dendrite.datasets, name)
    (x_train, y_train), (x_test, y_test) = module.load_data()
    x_train = x_train.reshape(len(x_train), -1).astype("float32") / 255.0
    x_test = x_test.reshape(len(x_test), -1).astype("float32") / 255.0
    return (x_train, y_train), (x_test, y_test)


def build_model(hidden: int, inputs: int = 784, classes: int = 10) -> Any:
    import dendrite as tf

    return tf.keras.Sequential(
        [
            tf.keras.layers.Dense(hidden, activation="relu", input_shape=(inputs,)),
            tf.keras.layers.Dense(classes, activation="softmax"),
        ]
    )


def train(args: argparse.Namespace) -> int:
    import dendrite as tf
    from dendrite.training.plotting import plot_history

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tf.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_dataset(args.dataset)
    model = build_model(args.hidden, x_train.shape[1])
    optimizer = tf.optimizers.get(args.optimizer)
    if args.lr is not None:
        optimizer.learning_rate = args.lr
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=args.validation_split,
        verbose=args.verbose,
    )
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"Test accuracy: {accuracy:.4f} (loss {loss:.4f}) on {len(x_test)} {args.dataset} images")
    model.save_weights(out / "model.weights.safetensors")
    (out / "history.json").write_text(json.dumps(history.history, indent=1))
    picture = out / "training_curve.png"
    if plot_history(history, picture, title=f"{args.dataset}: Dense {args.hidden} relu, Dense 10"):
        print(f"Saved the weights, history.json and {picture.name} in {out}/")
    else:
        print(
            f"Saved the weights and history.json in {out}/ (install matplotlib for the "
            f"training-curve picture: pip install 'dendrite[plot]')"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        return train(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
