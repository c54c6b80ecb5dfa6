"""``TensorBoard``: Keras 3's callback, writing TensorBoard event files itself.

No dependency: the files are written here in TensorBoard's record format, so
``pip install tensorboard`` is needed only to *view* them (``tensorboard --logdir DIR``).

The layout is Keras': ``log_dir/train/`` and ``log_dir/validation/`` each hold one
``events.out.tfevents.<time>.<host>.<pid>.v2`` file per run. Tags: ``epoch_loss``,
``epoch_accuracy``, ... (every log value, the ``val_`` ones under ``validation/`` without
their prefix), ``epoch_learning_rate`` (the optimizer's rate, when the logs lack it),
``epoch_steps_per_second`` (``write_steps_per_second``), ``batch_loss``, ... per batch
(``update_freq="batch"`` or every ``update_freq`` batches, the step counting batches
across epochs), ``evaluation_loss_vs_iterations`` ... in ``validation/`` (the validation
value at the train-batch count, as Keras does), weight histograms
``<layer>/<weight>/histogram`` every ``histogram_freq`` epochs, the weights as grey images
``<layer>/<weight>/image`` with ``write_images``, and the model's layer graph
(``write_graph``: one node per layer, its class as the op, the graph's edges as inputs).
``profile_batch`` and the embeddings arguments are accepted and ignored (no profiler or
projector here).

The record format (TFRecord): for each serialized ``Event`` protobuf ``data``,

    uint64 len(data) | uint32 masked_crc32c(len bytes) | data | uint32 masked_crc32c(data)

little-endian, with ``masked_crc(c) = ((c >> 15 | c << 17) + 0xa282ead8) mod 2^32`` over
CRC-32C (Castagnoli). ``Event`` = {1: wall_time double, 2: step int64, 3: file_version
string, 4: graph_def bytes, 5: summary}; ``Summary`` = {1: repeated Value}; ``Value`` =
{1: tag, 2: simple_value float, 4: Image, 5: HistogramProto, 9: SummaryMetadata}. The
encoder below writes exactly those fields; ``read_events`` reads them back (the tests also
read the files with TensorBoard's own ``EventAccumulator`` when it is installed).
"""

from __future__ import annotations

import os
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from dendrite.distribution.distribution_lib import is_writer
from dendrite.registry import register
from dendrite.training.callbacks.base import Callback

# ---------------------------------------------------------------------------- CRC-32C


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli polynomial, reflected 0x82F63B78) of ``data``."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ---------------------------------------------------------------------- protobuf encoding


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _string(field: int, text: str) -> bytes:
    return _bytes_field(field, text.encode("utf-8"))


def _double(field: int, value: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", value)


def _float(field: int, value: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", value)


def _int(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(int(value))


def _packed_doubles(field: int, values: Any) -> bytes:
    return _bytes_field(field, np.asarray(values, dtype="<f8").tobytes())


def scalar_value(tag: str, value: float) -> bytes:
    """A ``Summary.Value`` with a ``simple_value``."""
    return _string(1, tag) + _float(2, float(value))


def histogram_value(tag: str, values: Any, bins: int = 30) -> bytes:
    """A ``Summary.Value`` with a ``HistogramProto``: min, max, num, sum, sum of squares,
    then the buckets' right edges and counts."""
    data = np.asarray(values, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    if data.size == 0:
        data = np.zeros(1)
    low, high = float(data.min()), float(data.max())
    if low == high:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(data, bins=bins, range=(low, high))
    histo = (
        _double(1, float(data.min()))
        + _double(2, float(data.max()))
        + _double(3, float(data.size))
        + _double(4, float(data.sum()))
        + _double(5, float(np.square(data).sum()))
        + _packed_doubles(6, edges[1:])
        + _packed_doubles(7, counts)
    )
    return _string(1, tag) + _bytes_field(5, histo)


def png_bytes(image: np.ndarray) -> bytes:
    """A PNG (8-bit grey, or RGB/RGBA for 3/4 channels) of an array of values in [0, 255]."""
    pixels = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    height, width, channels = pixels.shape
    colour = {1: 0, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def image_value(tag: str, image: np.ndarray) -> bytes:
    """A ``Summary.Value`` with an ``Image`` (height, width, colour space, PNG)."""
    pixels = np.asarray(image)
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    proto = _int(1, height) + _int(2, width) + _int(3, channels) + _bytes_field(4, png_bytes(image))
    return _string(1, tag) + _bytes_field(4, proto)


def graph_def(nodes: list[tuple[str, str, list[str]]]) -> bytes:
    """A ``GraphDef`` of ``(name, op, input names)`` nodes (``NodeDef`` fields 1-3)."""
    body = b""
    for name, op, inputs in nodes:
        node = _string(1, name) + _string(2, op) + b"".join(_string(3, i) for i in inputs)
        body += _bytes_field(1, node)
    return body


# ------------------------------------------------------------------------------ writer


class EventFileWriter:
    """Appends ``Event`` records to one ``events.out.tfevents.*`` file in ``logdir``."""

    def __init__(self, logdir: Any, filename_suffix: str = ".v2") -> None:
        os.makedirs(logdir, exist_ok=True)
        name = (
            f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}."
            f"{os.getpid()}.{id(self) % 100000}{filename_suffix}"
        )
        self.path = os.path.join(os.fspath(logdir), name)
        self._file = open(self.path, "wb")  # noqa: SIM115 (closed by close())
        self._write_event(_string(3, "brain.Event:2"), step=0)

    def _write_event(self, body: bytes, step: int) -> None:
        event = _double(1, time.time()) + _int(2, step) + body
        header = struct.pack("<Q", len(event))
        self._file.write(header + struct.pack("<I", masked_crc32c(header)))
        self._file.write(event + struct.pack("<I", masked_crc32c(event)))

    def add_values(self, values: list[bytes], step: int) -> None:
        """One ``Event`` with a ``Summary`` of the given encoded ``Summary.Value``s."""
        if values:
            summary = b"".join(_bytes_field(1, v) for v in values)
            self._write_event(_bytes_field(5, summary), step)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.add_values([scalar_value(tag, value)], step)

    def add_graph(self, nodes: list[tuple[str, str, list[str]]]) -> None:
        self._write_event(_bytes_field(4, graph_def(nodes)), step=0)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


# ------------------------------------------------------------------------------ reader


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _read_varint(data, at)
        elif wire == 1:
            value, at = data[at : at + 8], at + 8
        elif wire == 2:
            size, at = _read_varint(data, at)
            value, at = data[at : at + size], at + size
        elif wire == 5:
            value, at = data[at : at + 4], at + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def read_records(path: Any) -> Iterator[bytes]:
    """The records of a TFRecord file, each CRC checked."""
    with open(path, "rb") as handle:
        data = handle.read()
    at = 0
    while at < len(data):
        header = data[at : at + 8]
        (length,) = struct.unpack("<Q", header)
        (crc,) = struct.unpack("<I", data[at + 8 : at + 12])
        if crc != masked_crc32c(header):
            raise ValueError(f"{path}: bad length checksum at byte {at}")
        record = data[at + 12 : at + 12 + length]
        (crc,) = struct.unpack("<I", data[at + 12 + length : at + 16 + length])
        if crc != masked_crc32c(record):
            raise ValueError(f"{path}: bad data checksum at byte {at}")
        yield record
        at += 16 + length


def read_events(path: Any) -> list[dict]:
    """The events of a file as dicts: ``step``, ``wall_time`` and, per summary value,
    ``scalars`` {tag: value}, ``histograms`` {tag: {min, max, num, ...}}, ``images``
    {tag: {height, width, png}}; ``graph`` (node names) for a graph event."""
    events = []
    for record in read_records(path):
        event: dict[str, Any] = {"step": 0, "scalars": {}, "histograms": {}, "images": {}}
        for field, _, value in _fields(record):
            if field == 1:
                event["wall_time"] = struct.unpack("<d", value)[0]
            elif field == 2:
                event["step"] = value
            elif field == 3:
                event["file_version"] = value.decode()
            elif field == 4:
                event["graph"] = [
                    dict((f, v.decode()) for f, _, v in _fields(node) if f in (1, 2))
                    for f, _, node in _fields(value)
                    if f == 1
                ]
            elif field == 5:
                for f, _, item in _fields(value):
                    if f == 1:
                        _read_value(item, event)
        events.append(event)
    return events


def _read_value(item: bytes, event: dict) -> None:
    tag = None
    for f, _, v in _fields(item):
        if f == 1:
            tag = v.decode()
        elif f == 2:
            event["scalars"][tag] = struct.unpack("<f", v)[0]
        elif f == 5:
            histo: dict[str, Any] = {}
            names = {1: "min", 2: "max", 3: "num", 4: "sum", 5: "sum_squares"}
            for hf, _, hv in _fields(v):
                if hf in names:
                    histo[names[hf]] = struct.unpack("<d", hv)[0]
                elif hf == 6:
                    histo["bucket_limit"] = np.frombuffer(hv, dtype="<f8")
                elif hf == 7:
                    histo["bucket"] = np.frombuffer(hv, dtype="<f8")
            event["histograms"][tag] = histo
        elif f == 4:
            image = {
                {1: "height", 2: "width", 3: "colorspace", 4: "png"}[k]: x for k, _, x in _fields(v)
            }
            event["images"][tag] = image


# ---------------------------------------------------------------------------- callback


def _layer_graph(model: Any) -> list[tuple[str, str, list[str]]]:
    """(name, class, inbound layer names) per layer, from ``utils.model_visualization``'s
    reading of the model's graph (a chain for a model without one)."""
    from dendrite.utils.model_visualization import layer_graph

    nodes, edges = layer_graph(model)
    inbound: dict[str, list[str]] = {node["id"]: [] for node in nodes}
    for source, target in edges:
        inbound[target].append(source)
    return [(node["id"], node["class_name"], inbound[node["id"]]) for node in nodes]


def _weight_image(weight: np.ndarray) -> np.ndarray | None:
    """A weight as a grey image (Keras' ``write_images``): 2-D as is, a convolution
    kernel as its (rows, columns * channels) tiles, scaled to [0, 255]."""
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim == 1:
        w = w[None]
    elif w.ndim >= 3:
        w = w.reshape(w.shape[0], -1)
    if w.ndim != 2 or w.size == 0:
        return None
    low, high = w.min(), w.max()
    return (w - low) / (high - low if high > low else 1.0) * 255.0


@register("callback")
class TensorBoard(Callback):
    """Write TensorBoard logs (Keras 3's arguments).

    Args:
        log_dir: the directory of the run (``train/`` and ``validation/`` below it).
        histogram_freq: write weight histograms every this many epochs (0: never).
        write_graph: write the model's layer graph once.
        write_images: write the weights as images (with the histograms).
        write_steps_per_second: log ``steps_per_second`` each epoch.
        update_freq: "epoch", "batch", or an int: write ``batch_*`` scalars every that
            many batches.
        profile_batch, embeddings_freq, embeddings_metadata: accepted, ignored.

    Under data parallelism only rank 0 writes (the logs it sees are the reduced ones).
    """

    def __init__(
        self,
        log_dir: Any = "logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        write_images: bool = False,
        write_steps_per_second: bool = False,
        update_freq: Any = "epoch",
        profile_batch: Any = 0,
        embeddings_freq: int = 0,
        embeddings_metadata: Any = None,
    ) -> None:
        super().__init__()
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and not (isinstance(update_freq, int) and update_freq > 0):
            raise ValueError(
                f"update_freq must be 'epoch', 'batch' or a positive int, got {update_freq!r}."
            )
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = int(histogram_freq)
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = update_freq
        self.profile_batch = profile_batch
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self._train_dir = os.path.join(self.log_dir, "train")
        self._val_dir = os.path.join(self.log_dir, "validation")
        self._writers: dict[str, EventFileWriter] = {}
        self._train_step = 0
        self._epoch_start = 0.0
        self._epoch_batches = 0
        self._active = True

    def _writer(self, kind: str) -> EventFileWriter:
        if kind not in self._writers:
            self._writers[kind] = EventFileWriter(
                self._train_dir if kind == "train" else self._val_dir
            )
        return self._writers[kind]

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._close()
        self._train_step = 0
        self._active = is_writer()  # under data parallelism, rank 0 alone writes
        if not self._active:
            return
        if self.write_graph and self.model is not None:
            self._writer("train").add_graph(_layer_graph(self.model))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = time.perf_counter()
        self._epoch_batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._train_step += 1
        self._epoch_batches += 1
        if not self._active or self.update_freq == "epoch" or self._train_step % self.update_freq:
            return
        values = [scalar_value(f"batch_{k}", v) for k, v in _scalars(logs).items()]
        self._writer("train").add_values(values, self._train_step)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self._active:
            return
        logs = dict(logs or {})
        scalars = _scalars(logs)
        train = {k: v for k, v in scalars.items() if not k.startswith("val_")}
        validation = {k[4:]: v for k, v in scalars.items() if k.startswith("val_")}
        if "learning_rate" not in train:
            rate = _learning_rate(self.model)
            if rate is not None:
                train["learning_rate"] = rate
        if self.write_steps_per_second:
            seconds = time.perf_counter() - self._epoch_start
            train["steps_per_second"] = self._epoch_batches / seconds if seconds > 0 else 0.0
        writer = self._writer("train")
        writer.add_values([scalar_value(f"epoch_{k}", v) for k, v in train.items()], epoch)
        if validation:
            val_writer = self._writer("validation")
            val_writer.add_values(
                [scalar_value(f"epoch_{k}", v) for k, v in validation.items()], epoch
            )
            val_writer.add_values(
                [scalar_value(f"evaluation_{k}_vs_iterations", v) for k, v in validation.items()],
                self._train_step,
            )
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            writer.add_values(self._weight_values(), epoch)
        for open_writer in self._writers.values():
            open_writer.flush()

    def _weight_values(self) -> list[bytes]:
        values = []
        for layer in getattr(self.model, "layers", []):
            for weight in getattr(layer, "weights", []):
                name = f"{layer.name}/{getattr(weight, 'name', 'weight').replace(':', '_')}"
                array = np.asarray(weight.numpy() if hasattr(weight, "numpy") else weight)
                values.append(histogram_value(f"{name}/histogram", array))
                if self.write_images:
                    image = _weight_image(array)
                    if image is not None:
                        values.append(image_value(f"{name}/image", image))
        return values

    def on_train_end(self, logs: dict | None = None) -> None:
        self._close()

    def _close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def _scalars(logs: dict | None) -> dict[str, float]:
    out = {}
    for key, value in (logs or {}).items():
        array = np.asarray(value)
        if array.ndim == 0 and array.dtype.kind in "biuf":
            out[key] = float(array)
    return out


def _learning_rate(model: Any) -> float | None:
    optimizer = getattr(model, "optimizer", None)
    try:
        return None if optimizer is None else float(optimizer.learning_rate)
    except (TypeError, ValueError, AttributeError):
        return None
