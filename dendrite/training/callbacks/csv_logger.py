"""``CSVLogger``: one CSV row per epoch with every log value."""

from __future__ import annotations

import collections
import csv
import os
from typing import Any

import numpy as np

from dendrite.distribution.distribution_lib import is_writer
from dendrite.registry import register
from dendrite.training.callbacks.base import Callback


@register("callback")
class CSVLogger(Callback):
    """Stream epoch results to a CSV file (Keras's format: an ``epoch`` column from 0,
    then the log names sorted; 1-D values are written as ``"[a, b]"``).

    Args:
        filename: the CSV file, e.g. ``"run/log.csv"``.
        separator: the field separator.
        append: append to an existing file (no second header), e.g. when resuming.
    """

    def __init__(self, filename: Any, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.writer: Any = None
        self.keys: list[str] | None = None
        self.append_header = True
        self.csv_file: Any = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not is_writer():  # under data parallelism, rank 0 alone writes
            return
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename, encoding="utf-8") as existing:
                    self.append_header = not bool(len(existing.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        directory = os.path.dirname(self.filename)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self.csv_file = open(self.filename, mode, newline="", encoding="utf-8")  # noqa: SIM115
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.csv_file is None:  # not the writing rank
            return
        logs = logs or {}

        def handle_value(value: Any) -> Any:
            zero_dim = isinstance(value, np.ndarray) and value.ndim == 0
            if isinstance(value, str):
                return value
            if isinstance(value, collections.abc.Iterable) and not zero_dim:
                return f'"[{", ".join(map(str, value))}]"'
            return value

        if self.keys is None:
            self.keys = sorted(logs.keys())
            # As Keras: when the first epoch has no validation results (none at all, or
            # validation_freq > 1), a val_ column per log name all the same, written "NA"
            # until there are values, so that every row fits one header.
            if not any(key.startswith("val_") for key in self.keys):
                self.keys += [f"val_{key}" for key in self.keys]
        if not self.writer:
            separator = self.sep

            class CustomDialect(csv.excel):
                delimiter = separator

            self.writer = csv.DictWriter(
                self.csv_file, fieldnames=["epoch", *self.keys], dialect=CustomDialect
            )
            if self.append_header:
                self.writer.writeheader()
        row = collections.OrderedDict({"epoch": epoch})
        row.update((key, handle_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None
