"""``dendrite train | evaluate | predict``: the design document's model on Fashion-MNIST.

    dendrite train [--epochs 5] [--batch-size 32] [--optimizer adam] [--lr LR]
                   [--hidden 128] [--dataset fashion_mnist|mnist] [--data FILE.npz]
                   [--out DIR]
    dendrite train --resume DIR          continue an interrupted run in DIR
    dendrite evaluate MODEL [--dataset ...|--data FILE.npz] [--split test|train]
    dendrite predict MODEL [--dataset ...|--data FILE.npz|--input X.npy]
                   [--output predictions.npy|.csv] [--classes]
    dendrite export MODEL --format onnx --output MODEL.onnx [--opset N]

``train`` prints the test accuracy and writes into DIR the model (``model.dendrite``), its
weights (``model.weights.safetensors``), the history (``history.json``) and the training
curve (``training_curve.png``, when matplotlib is installed). While it runs, a checkpoint
in ``DIR/.dendrite-backup`` lets ``--resume DIR`` continue after a crash or Ctrl-C, ending
with the same weights as an uninterrupted run. ``--data`` reads ``x_train, y_train, x_test,
y_test`` arrays from an ``.npz`` file (never pickled objects).

dendrite deletes and overwrites only what it wrote: ``DIR``'s ``run.json`` marks a run as
its own, and a fresh run refuses a ``DIR`` holding files under its names that it did not
write. Errors are one line on stderr (exit status 2 for a bad option, 1 for a failure, 130
after Ctrl-C); ``--debug`` shows the traceback (see ``dendrite.cli_errors``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from dendrite.cli_errors import (
    CliError,
    Parser,
    learning_rate,
    non_empty,
    non_negative_int,
    optimizer_name,
    positive_int,
    run_command,
    validation_split,
)
from dendrite.cli_run_dir import (
    BACKUP_DIR,
    CURVE_FILE,
    DATASETS,
    HISTORY_FILE,
    MODEL_FILE,
    WEIGHTS_FILE,
    claim_output,
    read_run,
    remove_backup,
    run_settings,
    train_interrupted,
    write_run,
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="dendrite", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    debug = {"action": "store_true", "help": "show the traceback of an error"}

    train = commands.add_parser("train", help="train the document's model and report accuracy")
    train.add_argument("--epochs", type=positive_int, default=None)
    train.add_argument("--batch-size", type=positive_int, default=None)
    train.add_argument("--optimizer", type=optimizer_name, default=None)
    train.add_argument(
        "--lr", type=learning_rate, default=None, help="learning rate (optimizer default)"
    )
    train.add_argument("--hidden", type=positive_int, default=None, help="hidden layer's units")
    train.add_argument("--dataset", choices=DATASETS, default=None)
    train.add_argument(
        "--data",
        type=non_empty,
        default=None,
        help="an .npz with x_train, y_train, x_test, y_test, or a folder of images with "
        "one sub-folder per class (trains a small CNN)",
    )
    train.add_argument(
        "--validation-split", type=validation_split, default=None, help="a fraction in [0, 1)"
    )
    train.add_argument("--seed", type=non_negative_int, default=None)
    train.add_argument(
        "--find-lr",
        action="store_true",
        help="run the learning-rate range test first and train at its suggestion "
        "(its curve goes to lr_finder.png)",
    )
    train.add_argument(
        "--out", type=non_empty, default="runs/latest", help="directory for the outputs"
    )
    train.add_argument(
        "--resume", type=non_empty, default=None, metavar="DIR", help="continue the run in DIR"
    )
    train.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    train.add_argument("--debug", **debug)

    for name, text in (("evaluate", "loss and metrics of a saved model"), ("predict", "")):
        command = commands.add_parser(name, help=text or "write a saved model's predictions")
        command.add_argument("model", help="a model file saved by dendrite (.dendrite/.keras)")
        command.add_argument("--dataset", choices=DATASETS, default="fashion_mnist")
        command.add_argument(
            "--data", type=non_empty, default=None, help="an .npz with x_test, y_test (...)"
        )
        command.add_argument("--split", choices=("test", "train"), default="test")
        command.add_argument("--batch-size", type=positive_int, default=32)
        command.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2))
        command.add_argument("--debug", **debug)
        if name == "predict":
            command.add_argument(
                "--input", type=non_empty, default=None, help="an .npy array of inputs"
            )
            command.add_argument(
                "--output", type=non_empty, default="predictions.npy", help=".npy or .csv"
            )
            command.add_argument(
                "--classes", action="store_true", help="write the arg-max class, not scores"
            )
    export = commands.add_parser("export", help="write a saved model as ONNX (ONNX Runtime)")
    export.add_argument("model", help="a model file saved by dendrite (.dendrite/.keras)")
    export.add_argument("--format", choices=("onnx",), default="onnx")
    export.add_argument("--output", type=non_empty, required=True, help="the .onnx file")
    export.add_argument("--opset", type=positive_int, default=None, help="ONNX opset version")
    export.add_argument("--debug", **debug)
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
    if x.ndim == 0 or x.dtype.kind not in "biuf":
        raise CliError(f"expected an array of numbers, not {x.dtype} of shape {x.shape}")
    if len(x) == 0:
        raise CliError("no samples")
    return x.reshape(len(x), -1).astype("float32"), np.asarray(y)


def load_npz(path: str) -> tuple:
    """``((x_train, y_train), (x_test, y_test))`` from an .npz (missing parts are None)."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as arrays:
            found = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        reason = getattr(error, "strerror", None) or error
        if "pickle" in str(reason):  # numpy's guess for a file that is no .npz
            reason = "not an .npz archive of arrays (dendrite never loads pickled objects)"
        raise CliError(f"cannot read {path}: {reason}") from None
    if not isinstance(found, dict):
        raise CliError(f"cannot read {path}: not an .npz of named arrays")
    if "x" in found and "x_test" not in found:
        found["x_test"], found["y_test"] = found["x"], found.get("y")
    parts = []
    for split in ("train", "test"):
        x, y = found.get(f"x_{split}"), found.get(f"y_{split}")
        try:
            parts.append(None if x is None else _scaled(x, y) if y is not None else (x, None))
        except CliError as error:
            raise CliError(f"{path}: x_{split}: {error}") from None
    return parts[0], parts[1]


def _split(args: argparse.Namespace) -> tuple:
    train, test = load_npz(args.data) if args.data else load_dataset(args.dataset)
    chosen = train if args.split == "train" else test
    if chosen is None:
        raise CliError(f"{args.data} has no x_{args.split} array")
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
    if x.ndim < 1:
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


def train(args: argparse.Namespace) -> int:
    out, settings, resuming = run_settings(args)
    parallel = _data_parallel()  # under mpiexec: one rank of a data-parallel run
    if parallel is not None and parallel.process_id != 0:
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            return _train_other_rank(args, out, settings, resuming, parallel)
    claim_output(out, resuming)
    backup = out / BACKUP_DIR
    if resuming and not backup.exists() and (out / MODEL_FILE).exists():
        saved = read_run(out) or {}
        if saved.get("finished", True) and saved.get("epochs") == settings["epochs"]:
            epochs = saved["epochs"]
            print(f"The run in {out} has already finished ({epochs} epochs); nothing to resume.")
            _share_decision(parallel, True)
            return 0
    _share_decision(parallel, False)
    return _train_run(args, out, settings, resuming, backup)


def _data_parallel() -> Any:
    """The DataParallel distribution when started by mpiexec with several processes (set
    as the global distribution), else None."""
    from dendrite.distribution import DataParallel, launched_processes, set_distribution

    if launched_processes() < 2:
        return None
    parallel = DataParallel()
    set_distribution(parallel)
    return parallel


def _share_decision(parallel: Any, finished: bool) -> bool:
    """Rank 0's answer to "has this run already finished?", on every rank."""
    return finished if parallel is None else parallel.communicator.broadcast_object(finished)


def _train_other_rank(
    args: argparse.Namespace, out: Path, settings: dict, resuming: bool, parallel: Any
) -> int:
    """A rank other than 0 trains alongside rank 0 (which broadcasts its weights, restored
    backup and epoch) and writes only into a scratch directory, removed at the end."""
    import shutil
    import tempfile

    if _share_decision(parallel, False):
        return 0
    scratch = Path(tempfile.mkdtemp(prefix=f"dendrite-rank{parallel.process_id}-"))
    try:
        return _train_run(args, scratch, settings, resuming, scratch / BACKUP_DIR)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _train_run(
    args: argparse.Namespace, out: Path, settings: dict, resuming: bool, backup: Path
) -> int:
    import numpy as np

    import dendrite as tf

    write_run(out, settings, finished=False)
    tf.utils.set_random_seed(settings["seed"])
    if settings["data"] and Path(settings["data"]).is_dir():
        return train_image_folder(args, settings, out, backup, resuming)
    if settings["data"]:
        train_part, test = load_npz(settings["data"])
        if train_part is None or train_part[1] is None:
            missing = "x_train" if train_part is None else "y_train"
            raise CliError(f"--data {settings['data']} has no {missing} array")
        x_train, y_train = train_part
        x_test, y_test = test if test is not None else (None, None)
    else:
        (x_train, y_train), (x_test, y_test) = load_dataset(settings["dataset"])
    if y_train.dtype.kind not in "biu" or (y_test is not None and y_test.dtype.kind not in "biu"):
        raise CliError("the labels (y_train, y_test) must be whole numbers, the classes")
    classes = int(max(y_train.max(), -1 if y_test is None or not y_test.size else y_test.max())) + 1
    model = build_model(settings["hidden"], x_train.shape[1], max(classes, 2))
    optimizer = _compile(model, settings)
    if getattr(args, "find_lr", False) and not resuming:
        if settings["lr"] is not None:
            raise CliError("give --lr or --find-lr, not both")
        found = model.find_learning_rate(x_train, y_train, batch_size=settings["batch_size"] or 32)
        settings["lr"] = float(found.suggestion)
        optimizer.learning_rate = settings["lr"]
        write_run(out, settings, finished=False)  # --resume continues at the found rate
        try:
            found.plot(out / "lr_finder.png")
            where = " (curve in lr_finder.png)"
        except ImportError:
            where = " (install matplotlib for its curve: pip install 'dendrite[plot]')"
        print(f"Learning-rate range test: training at {settings['lr']:.3g}{where}")

    logged, callbacks = _history_and_callbacks(out, backup, resuming)

    with np.errstate(over="ignore", invalid="ignore"):  # a divergence is reported below
        model.fit(
            x_train,
            y_train,
            epochs=settings["epochs"],
            batch_size=settings["batch_size"],
            validation_split=settings["validation_split"],
            verbose=args.verbose,
            callbacks=callbacks,
        )
    _check_finite_weights(model, settings)
    if x_test is not None and y_test is not None:
        loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
        name = settings["data"] or settings["dataset"]
        print(f"Test accuracy: {accuracy:.4f} (loss {loss:.4f}) on {len(x_test)} {name} images")
    title = f"{settings['data'] or settings['dataset']}: Dense {settings['hidden']} relu, Dense 10"
    return _save_run(model, out, settings, logged, title)


def _compile(model: Any, settings: dict) -> Any:
    """Compile the run's model with its optimizer (and --lr); returns the optimizer."""
    import dendrite as tf

    optimizer = tf.optimizers.get(settings["optimizer"])
    if settings["lr"] is not None:
        optimizer.learning_rate = settings["lr"]
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return optimizer


def _history_and_callbacks(out: Path, backup: Path, resuming: bool) -> tuple[dict, list]:
    """The run's history (the earlier epochs' when resuming), and fit's callbacks: the
    backup in dendrite's own folder, the history written after every epoch, a stop on NaN."""
    from dendrite._atomic import atomic_write_bytes
    from dendrite.training.callbacks import BackupAndRestore, LambdaCallback, TerminateOnNaN

    history_path = out / HISTORY_FILE
    logged: dict[str, list] = {}
    if resuming and history_path.exists():
        with contextlib.suppress(OSError, ValueError, UnicodeDecodeError):
            loaded = json.loads(history_path.read_text())
            logged = loaded if isinstance(loaded, dict) else {}

    def record(epoch: int, logs: dict) -> None:
        for key, value in logs.items():
            logged.setdefault(key, [])[epoch:] = [float(value)]
        atomic_write_bytes(history_path, json.dumps(logged, indent=1).encode())

    callbacks = [
        BackupAndRestore(backup, delete_checkpoint=False),
        LambdaCallback(on_epoch_end=record),
        TerminateOnNaN(),
    ]
    return logged, callbacks


def _check_finite_weights(model: Any, settings: dict) -> None:
    import numpy as np

    if not all(np.isfinite(weight).all() for weight in model.get_weights()):
        lr = settings["lr"] if settings["lr"] is not None else "the optimizer's default"
        raise CliError(
            f"training diverged: the weights became NaN or infinite with --lr {lr}; start "
            f"again with a smaller --lr (the model was not saved)"
        )


def _save_run(model: Any, out: Path, settings: dict, logged: dict, title: str) -> int:
    """Save the model, its weights and history, mark the run finished, drop the backup
    (only once the model file is safely written) and draw the training curve."""
    from dendrite._atomic import atomic_write_bytes
    from dendrite.training.plotting import plot_history

    model.save(out / MODEL_FILE)
    model.save_weights(out / WEIGHTS_FILE)
    atomic_write_bytes(out / HISTORY_FILE, json.dumps(logged, indent=1).encode())
    write_run(out, settings, finished=True)
    remove_backup(out)
    picture = out / CURVE_FILE
    if logged and plot_history(logged, picture, title=title):
        print(f"Saved {MODEL_FILE}, the weights, {HISTORY_FILE} and {picture.name} in {out}/")
    else:
        print(
            f"Saved {MODEL_FILE}, the weights and {HISTORY_FILE} in {out}/ (install matplotlib "
            f"for the training-curve picture: pip install 'dendrite[plot]')"
        )
    return 0


def train_image_folder(
    args: argparse.Namespace, settings: dict, out: Path, backup: Path, resuming: bool
) -> int:
    """``train --data DIR``: a small CNN on a folder of images (classes = sub-folders),
    read by ``image_dataset_from_directory`` (20% held out for validation), with the same
    progress, checkpoint, saved model, history and curve as ``train``."""
    import numpy as np

    import dendrite as tf

    folder = settings["data"]
    if getattr(args, "find_lr", False) and not resuming:
        raise CliError(
            f"--find-lr needs the data in memory (a built-in dataset or an .npz); --data "
            f"{folder} is an image folder: give --lr instead"
        )
    size = (28, 28)
    split = settings["validation_split"] or 0.2
    try:
        train_ds, val_ds = tf.utils.image_dataset_from_directory(
            folder,
            color_mode="grayscale",
            image_size=size,
            batch_size=settings["batch_size"],
            seed=settings["seed"],
            validation_split=split,
            subset="both",
            verbose=args.verbose > 0,
        )
    except (ValueError, ImportError) as error:
        raise CliError(f"--data {folder}: {error}") from None
    classes = len(train_ds.class_names)
    if classes < 2:
        raise CliError(f"--data {folder}: needs at least 2 class sub-folders, found {classes}")
    layers = tf.keras.layers
    model = tf.keras.Sequential(
        [
            layers.Input((*size, 1)),
            layers.Rescaling(1.0 / 255),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(settings["hidden"], activation="relu"),
            layers.Dense(classes, activation="softmax"),
        ]
    )
    _compile(model, settings)
    logged, callbacks = _history_and_callbacks(out, backup, resuming)

    with np.errstate(over="ignore", invalid="ignore"):
        try:
            model.fit(
                train_ds,
                epochs=settings["epochs"],
                validation_data=val_ds,
                verbose=args.verbose,
                callbacks=callbacks,
            )
        except ValueError as error:  # an unreadable image, mixed sizes: named in the error
            raise CliError(f"--data {folder}: {error}") from None
    _check_finite_weights(model, settings)
    loss, accuracy = model.evaluate(val_ds, verbose=0)
    print(
        f"Validation accuracy: {accuracy:.4f} (loss {loss:.4f}) on {len(val_ds.file_paths)} "
        f"images of {folder} ({', '.join(train_ds.class_names)})"
    )
    return _save_run(model, out, settings, logged, f"{folder}: CNN, {classes} classes")


# --- evaluate / predict ---------------------------------------------------------------------
def _load(path: str) -> Any:
    from dendrite.saving import load_model

    if Path(path).is_dir():
        raise CliError(f"{path} is a directory, not a model file")
    return load_model(path)


def evaluate(args: argparse.Namespace) -> int:
    model = _load(args.model)
    if not getattr(model, "_compiled", False):
        raise CliError(f"{args.model} was saved without compile settings (a loss)")
    x, y = _split(args)
    if y is None:
        raise CliError("evaluate needs labels (y_test / y_train in the .npz)")
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

    output = Path(args.output)
    if output.is_dir():
        raise CliError(f"--output {output} is a directory, not a file name")
    if output.parent.exists() and not output.parent.is_dir():
        raise CliError(f"--output {output}: {output.parent} is a file, not a directory")
    model = _load(args.model)
    if args.input:
        try:
            x = np.load(args.input, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            reason = getattr(error, "strerror", None) or error
            raise CliError(f"cannot read --input {args.input}: {reason}") from None
        if not isinstance(x, np.ndarray):
            raise CliError(f"--input {args.input} is an .npz; give one array saved as .npy")
        if x.dtype == np.uint8:
            x = x.astype("float32") / 255.0
        if x.ndim == 0 or x.dtype.kind not in "biuf":
            raise CliError(f"--input {args.input}: expected an array of numbers, not {x.dtype}")
    else:
        x, _ = _split(args)
    predictions = model.predict(fit_to_model(x, model), batch_size=args.batch_size, verbose=0)
    if isinstance(predictions, (list, dict)):
        raise CliError("dendrite predict writes models with one output")
    if args.classes:
        predictions = np.argmax(predictions, axis=-1)
    with atomic_writer(output) as stream:
        if output.suffix == ".csv":
            flat = predictions.reshape(len(predictions), -1)
            fmt = "%d" if flat.dtype.kind in "iu" else "%.9g"
            np.savetxt(stream, flat, delimiter=",", fmt=fmt)
        else:
            np.save(stream, predictions, allow_pickle=False)
    print(f"Wrote {predictions.shape} predictions for {len(x)} samples to {output}")
    return 0


# --- export ---------------------------------------------------------------------------------
def export(args: argparse.Namespace) -> int:
    """Write the saved model as ONNX; nothing is written when a layer cannot be exported."""
    output = Path(args.output)
    if output.is_dir():
        raise CliError(f"--output {output} is a directory, not a file name")
    if output.parent.exists() and not output.parent.is_dir():
        raise CliError(f"--output {output}: {output.parent} is a file, not a directory")
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise CliError(
            "exporting to ONNX needs the onnx package: pip install 'dendrite[onnx]'"
        ) from None
    model = _load(args.model)
    model.export(output, format=args.format, opset_version=args.opset)
    print(f"Wrote {args.format.upper()} model '{model.name}' to {output}")
    return 0


COMMANDS = {"train": train, "evaluate": evaluate, "predict": predict, "export": export}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        print("dendrite: interrupted", file=sys.stderr)
        return 130
    hint = train_interrupted if args.command == "train" else None
    status = run_command(args.command, COMMANDS[args.command], args, interrupted=hint)
    from dendrite.distribution import distribution

    if status and distribution() is not None:  # a failed rank ends every rank's run
        distribution().communicator.abort(status)
    return status


if __name__ == "__main__":
    sys.exit(main())
