"""``dendrite train | evaluate | predict``: the design document's model on Fashion-MNIST.

    dendrite train [--epochs 5] [--batch-size 32] [--optimizer adam] [--lr LR]
                   [--hidden 128] [--dataset fashion_mnist|mnist] [--data FILE.npz]
                   [--out DIR]
    dendrite train --resume DIR          continue an interrupted run in DIR
    dendrite evaluate MODEL [--dataset ...|--data FILE.npz] [--split test|train]
    dendrite predict MODEL [--dataset ...|--data FILE.npz|--input X.npy]
                   [--output predictions.npy|.csv] [--classes]

``train`` prints the test accuracy and writes into DIR the model (``model.dendrite``), its
weights (``model.weights.safetensors``), the history (``history.json``) and the training
curve (``training_curve.png``, when matplotlib is installed). While it runs, a checkpoint
in ``DIR/backup`` lets ``--resume DIR`` continue after a crash or Ctrl-C, ending with the
same weights as an uninterrupted run. ``--data`` reads ``x_train, y_train, x_test, y_test``
arrays from an ``.npz`` file (never pickled objects).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

DATASETS = ("fashion_mnist", "mnist")
RUN_FILE = "run.json"
BACKUP_DIR = "backup"
MODEL_FILE = "model.dendrite"
_TRAIN_DEFAULTS = {
    "epochs": 5,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": None,
    "hidden": 128,
    "dataset": "fashion_mnist",
    "data": None,
    "validation_split": 0.0,
    "seed": 0,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dendrite", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train the document's model and report accuracy")
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--optimizer", default=None)
    train.add_argument("--lr", type=float, default=None, help="learning rate (optimizer default)")
    train.add_argument("--hidden", type=int, default=None, help="units of the hidden layer")
    train.add_argument("--dataset", choices=DATASETS, default=None)
    train.add_argument("--data", default=None, help="an .npz with x_train, y_train, x_test, y_test")
    train.add_argument("--validation-split", type=float, default=None)
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--out", default="runs/latest", help="directory for the outputs")
    train.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR")
    train.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))

    for name, text in (("evaluate", "loss and metrics of a saved model"), ("predict", "")):
        command = commands.add_parser(name, help=text or "write a saved model's predictions")
        command.add_argument("model", help="a model file saved by dendrite (.dendrite/.keras)")
        command.add_argument("--dataset", choices=DATASETS, default="fashion_mnist")
        command.add_argument("--data", default=None, help="an .npz with x_test, y_test (...)")
        command.add_argument("--split", choices=("test", "train"), default="test")
        command.add_argument("--batch-size", type=int, default=32)
        command.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2))
        if name == "predict":
            command.add_argument("--input", default=None, help="an .npy array of inputs")
            command.add_argument("--output", default="predictions.npy", help=".npy or .csv")
            command.add_argument(
                "--classes", action="store_true", help="write the arg-max class, not scores"
            )
    return parser


# --- data -----------------------------------------------------------------------------------
def load_dataset(name: str) -> tuple:
    import dendrite

    module = getattr(dendrite.datasets, name)
    (x_train, y_train), (x_test, y_test) = module.load_data()
    return _scaled(x_train, y_train), _scaled(x_test, y_test)


def _scaled(x: Any, y: Any) -> tuple:
    import numpy as np

    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = x.astype("float32") / 255.0
    return x.reshape(len(x), -1).astype("float32"), np.asarray(y)


def load_npz(path: str) -> tuple:
    """``((x_train, y_train), (x_test, y_test))`` from an .npz (missing parts are None)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as arrays:
            found = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError) as error:
        raise SystemExit(f"dendrite: cannot read {path}: {error}") from None
    if "x" in found and "x_test" not in found:
        found["x_test"], found["y_test"] = found["x"], found.get("y")
    parts = []
    for split in ("train", "test"):
        x, y = found.get(f"x_{split}"), found.get(f"y_{split}")
        parts.append(None if x is None else _scaled(x, y) if y is not None else (x, None))
    return parts[0], parts[1]


def _split(args: argparse.Namespace) -> tuple:
    train, test = load_npz(args.data) if args.data else load_dataset(args.dataset)
    chosen = train if args.split == "train" else test
    if chosen is None:
        raise SystemExit(f"dendrite: {args.data} has no x_{args.split} array.")
    return chosen


def fit_to_model(x: Any, model: Any) -> Any:
    """Reshape flat inputs to the model's input shape when the sizes agree."""
    import math

    shape = getattr(model, "_built_input_shape", None)
    if shape is None:
        try:
            shape = model.input_shape
        except (AttributeError, ValueError):
            shape = None
    if not shape or not all(isinstance(s, int) for s in shape[1:]):
        return x
    if math.prod(x.shape[1:]) == math.prod(shape[1:]) and tuple(x.shape[1:]) != tuple(shape[1:]):
        return x.reshape(len(x), *shape[1:])
    return x


# --- train ----------------------------------------------------------------------------------
def build_model(hidden: int, inputs: int = 784, classes: int = 10) -> Any:
    import dendrite as tf

    return tf.keras.Sequential(
        [
            tf.keras.layers.Dense(hidden, activation="relu", input_shape=(inputs,)),
            tf.keras.layers.Dense(classes, activation="softmax"),
        ]
    )


def _run_settings(args: argparse.Namespace) -> tuple[Path, dict, bool]:
    """The output directory, the run's settings, and whether this resumes a run."""
    if args.resume:
        out = Path(args.resume)
        try:
            saved = json.loads((out / RUN_FILE).read_text())
        except (OSError, ValueError) as error:
            raise SystemExit(
                f"dendrite: cannot resume {out}: no readable {RUN_FILE} ({error}). Start runs "
                f"with `dendrite train --out DIR`."
            ) from None
        settings = {key: saved.get(key, default) for key, default in _TRAIN_DEFAULTS.items()}
        if args.epochs is not None:  # a run may be extended
            settings["epochs"] = args.epochs
        changed = [k for k in _TRAIN_DEFAULTS if getattr(args, k) not in (None, settings[k])]
        if changed:
            raise SystemExit(
                f"dendrite: --resume continues the run with its own settings; do not change "
                f"{', '.join('--' + k.replace('_', '-') for k in changed)}."
            )
        return out, settings, True
    settings = {
        key: default if getattr(args, key) is None else getattr(args, key)
        for key, default in _TRAIN_DEFAULTS.items()
    }
    return Path(args.out), settings, False


def train(args: argparse.Namespace) -> int:
    import dendrite as tf
    from dendrite._atomic import atomic_write_bytes
    from dendrite.training.callbacks import BackupAndRestore, LambdaCallback
    from dendrite.training.plotting import plot_history

    out, settings, resuming = _run_settings(args)
    out.mkdir(parents=True, exist_ok=True)
    backup = out / BACKUP_DIR
    if not resuming:
        shutil.rmtree(backup, ignore_errors=True)  # a fresh run never resumes a stale one
    elif not backup.exists() and (out / MODEL_FILE).exists():
        saved = json.loads((out / RUN_FILE).read_text()).get("epochs")
        if saved == settings["epochs"]:
            print(f"The run in {out} has already finished ({saved} epochs); nothing to resume.")
            return 0
    atomic_write_bytes(out / RUN_FILE, json.dumps(settings, indent=1).encode())
    tf.utils.set_random_seed(settings["seed"])
    if settings["data"]:
        (x_train, y_train), test = load_npz(settings["data"])
        x_test, y_test = test if test is not None else (None, None)
    else:
        (x_train, y_train), (x_test, y_test) = load_dataset(settings["dataset"])
    classes = int(max(y_train.max(), -1 if y_test is None else y_test.max())) + 1
    model = build_model(settings["hidden"], x_train.shape[1], max(classes, 2))
    optimizer = tf.optimizers.get(settings["optimizer"])
    if settings["lr"] is not None:
        optimizer.learning_rate = settings["lr"]
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    history_path = out / "history.json"
    logged: dict[str, list] = {}
    if resuming and history_path.exists():
        logged = json.loads(history_path.read_text())

    def record(epoch: int, logs: dict) -> None:
        for key, value in logs.items():
            logged.setdefault(key, [])[epoch:] = [float(value)]
        atomic_write_bytes(history_path, json.dumps(logged, indent=1).encode())

    model.fit(
        x_train,
        y_train,
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        validation_split=settings["validation_split"],
        verbose=args.verbose,
        callbacks=[
            BackupAndRestore(backup, delete_checkpoint=False),
            LambdaCallback(on_epoch_end=record),
        ],
    )
    if x_test is not None and y_test is not None:
        loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
        name = settings["data"] or settings["dataset"]
        print(f"Test accuracy: {accuracy:.4f} (loss {loss:.4f}) on {len(x_test)} {name} images")
    model.save(out / MODEL_FILE)
    model.save_weights(out / "model.weights.safetensors")
    atomic_write_bytes(history_path, json.dumps(logged, indent=1).encode())
    shutil.rmtree(backup, ignore_errors=True)  # only once the model file is safely written
    picture = out / "training_curve.png"
    title = f"{settings['data'] or settings['dataset']}: Dense {settings['hidden']} relu, Dense 10"
    if logged and plot_history(logged, picture, title=title):
        print(f"Saved {MODEL_FILE}, the weights, history.json and {picture.name} in {out}/")
    else:
        print(
            f"Saved {MODEL_FILE}, the weights and history.json in {out}/ (install matplotlib "
            f"for the training-curve picture: pip install 'dendrite[plot]')"
        )
    return 0


# --- evaluate / predict ---------------------------------------------------------------------
def _load(path: str) -> Any:
    from dendrite.saving import ModelLoadError, load_model

    try:
        return load_model(path)
    except (ModelLoadError, FileNotFoundError) as error:
        raise SystemExit(f"dendrite: {error}") from None


def evaluate(args: argparse.Namespace) -> int:
    model = _load(args.model)
    if not getattr(model, "_compiled", False):
        raise SystemExit(f"dendrite: {args.model} was saved without compile settings (a loss).")
    x, y = _split(args)
    if y is None:
        raise SystemExit("dendrite: evaluate needs labels (y_test / y_train in the .npz).")
    results = model.evaluate(
        fit_to_model(x, model),
        y,
        batch_size=args.batch_size,
        verbose=args.verbose,
        return_dict=True,
    )
    shown = " - ".join(f"{name}: {float(value):.4f}" for name, value in results.items())
    print(f"{len(x)} samples ({args.split} split) - {shown}")
    return 0


def predict(args: argparse.Namespace) -> int:
    import numpy as np

    from dendrite._atomic import atomic_writer

    model = _load(args.model)
    if args.input:
        try:
            x = np.load(args.input, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise SystemExit(f"dendrite: cannot read {args.input}: {error}") from None
        if x.dtype == np.uint8:
            x = x.astype("float32") / 255.0
    else:
        x, _ = _split(args)
    predictions = model.predict(fit_to_model(x, model), batch_size=args.batch_size, verbose=0)
    if isinstance(predictions, (list, dict)):
        raise SystemExit("dendrite predict writes models with one output.")
    if args.classes:
        predictions = np.argmax(predictions, axis=-1)
    output = Path(args.output)
    with atomic_writer(output) as stream:
        if output.suffix == ".csv":
            flat = predictions.reshape(len(predictions), -1)
            fmt = "%d" if flat.dtype.kind in "iu" else "%.9g"
            np.savetxt(stream, flat, delimiter=",", fmt=fmt)
        else:
            np.save(stream, predictions, allow_pickle=False)
    print(f"Wrote {predictions.shape} predictions for {len(x)} samples to {output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        return train(args)
    if args.command == "evaluate":
        return evaluate(args)
    if args.command == "predict":
        return predict(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
