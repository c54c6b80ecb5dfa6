"""The run directory of ``dendrite train --out DIR``: what dendrite writes there, how it
knows a directory is its own, and the settings a ``--resume`` continues with.

dendrite deletes and overwrites only what it wrote. ``DIR/run.json`` (the run's settings)
marks a run as dendrite's; a fresh run refuses a ``DIR`` that holds files under dendrite's
names without one. The checkpoint lives in ``DIR/.dendrite-backup/``, a name no user picks,
and only its own files there (the checkpoint and stray temporaries) are ever deleted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

from dendrite.cli_errors import (
    CliError,
    learning_rate,
    non_negative_int,
    optimizer_name,
    positive_int,
    validation_split,
)

DATASETS = ("fashion_mnist", "mnist")
RUN_FILE = "run.json"
BACKUP_DIR = ".dendrite-backup"  # dendrite's own: never a name a user would pick
CHECKPOINT_FILE = "latest.checkpoint"  # BackupAndRestore's one file in BACKUP_DIR
MODEL_FILE = "model.dendrite"
WEIGHTS_FILE = "model.weights.safetensors"
HISTORY_FILE = "history.json"
CURVE_FILE = "training_curve.png"
OWN_NAMES = (RUN_FILE, MODEL_FILE, WEIGHTS_FILE, HISTORY_FILE, CURVE_FILE, BACKUP_DIR)
TRAIN_DEFAULTS = {
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


def read_run(out: Path) -> dict | None:
    """The settings in ``out/run.json`` when dendrite wrote it, else None."""
    try:
        saved = json.loads((out / RUN_FILE).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if isinstance(saved, dict) and all(key in saved for key in TRAIN_DEFAULTS):
        return saved
    return None


_SETTING_CHECKS = {
    "epochs": positive_int,
    "batch_size": positive_int,
    "optimizer": optimizer_name,
    "lr": learning_rate,
    "hidden": positive_int,
    "validation_split": validation_split,
    "seed": non_negative_int,
}


def _check_saved_settings(out: Path, settings: dict) -> None:
    """A run.json edited or damaged by hand fails here, naming the setting."""
    for key, value in settings.items():
        check = _SETTING_CHECKS.get(key)
        problem = None
        if key == "dataset" and value not in DATASETS:
            problem = f"unknown dataset {value!r}"
        elif key == "data" and value is not None and not (isinstance(value, str) and value):
            problem = f"expected a path, not {value!r}"
        elif check is not None and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                problem = f"unexpected {value!r}"
            else:
                try:
                    check(str(value))
                except argparse.ArgumentTypeError as error:
                    problem = str(error)
        if problem:
            raise CliError(
                f"cannot resume {out}: its {RUN_FILE} is broken ({key}: {problem}); start a "
                f"new run with `dendrite train --out NEW_DIR`"
            )


def run_settings(args: argparse.Namespace) -> tuple[Path, dict, bool]:
    """The output directory, the run's settings, and whether this resumes a run."""
    if args.resume:
        out = Path(args.resume)
        try:
            saved = json.loads((out / RUN_FILE).read_text())
        except (OSError, ValueError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or error
            raise CliError(
                f"cannot resume {out}: no readable {RUN_FILE} ({reason}); start runs with "
                f"`dendrite train --out DIR`"
            ) from None
        if not isinstance(saved, dict):
            raise CliError(f"cannot resume {out}: its {RUN_FILE} is broken (not a JSON object)")
        settings = {key: saved.get(key, default) for key, default in TRAIN_DEFAULTS.items()}
        _check_saved_settings(out, settings)
        if args.epochs is not None:  # a run may be extended
            settings["epochs"] = args.epochs
        changed = [k for k in TRAIN_DEFAULTS if getattr(args, k) not in (None, settings[k])]
        if changed:
            raise CliError(
                f"--resume continues the run with its own settings; do not change "
                f"{', '.join('--' + k.replace('_', '-') for k in changed)}"
            )
        return out, settings, True
    settings = {
        key: default if getattr(args, key) is None else getattr(args, key)
        for key, default in TRAIN_DEFAULTS.items()
    }
    return Path(args.out), settings, False


def _own_backup_files(backup: Path) -> list[Path]:
    """What BackupAndRestore writes in ``backup``: its checkpoint and stray temporaries."""
    found = [backup / CHECKPOINT_FILE] if (backup / CHECKPOINT_FILE).is_file() else []
    return found + [p for p in backup.glob(f".{CHECKPOINT_FILE}.*.tmp") if p.is_file()]


def claim_output(out: Path, resuming: bool) -> None:
    """Make ``out`` ready for dendrite's files, refusing one where they would replace
    files dendrite did not write."""
    flag = "--resume" if resuming else "--out"
    if out.exists() and not out.is_dir():
        raise CliError(f"{flag} {out} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(f"{flag} {out}: cannot create it ({error.strerror or error})") from None
    backup = out / BACKUP_DIR
    if backup.exists() or backup.is_symlink():
        own = set(_own_backup_files(backup)) if backup.is_dir() else set()
        if backup.is_symlink() or not backup.is_dir() or set(backup.iterdir()) - own:
            raise CliError(
                f"{backup} holds files dendrite did not write; move them away or choose "
                f"another {flag}"
            )
    if resuming:
        return
    taken = sorted(name for name in OWN_NAMES if (out / name).exists() or (out / name).is_symlink())
    if taken and read_run(out) is None:
        raise CliError(
            f"--out {out} already holds {', '.join(taken)}, not written by a dendrite run; "
            f"dendrite never overwrites files it did not create: choose another --out"
        )
    remove_backup(out)  # a fresh run never resumes a stale checkpoint of its own


def remove_backup(out: Path) -> None:
    """Delete dendrite's own checkpoint files, then the backup folder if that empties it."""
    backup = out / BACKUP_DIR
    if not backup.is_dir() or backup.is_symlink():
        return
    for path in _own_backup_files(backup):
        path.unlink()
    with contextlib.suppress(OSError):  # something else in it: leave the folder
        backup.rmdir()


def write_run(out: Path, settings: dict, finished: bool) -> None:
    from dendrite._atomic import atomic_write_bytes

    atomic_write_bytes(
        out / RUN_FILE, json.dumps({**settings, "finished": finished}, indent=1).encode()
    )


def train_interrupted(args: argparse.Namespace) -> str:
    out = Path(args.resume or args.out)
    if read_run(out) is None:
        return "nothing was saved; start the run again"
    return f"continue from the last finished epoch with `dendrite train --resume {out}`"
