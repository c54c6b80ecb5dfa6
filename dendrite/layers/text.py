"""``TextVectorization``: strings to token indices or token counts, with Keras 3's
arguments (the design document's section 6, natural-language processing).

Each string is standardised (by default lower-cased, with ASCII punctuation removed),
split into tokens (by default on whitespace), optionally extended with its n-grams (the
tokens joined by single spaces), and looked up in the vocabulary. ``adapt(texts)`` builds
the vocabulary from data: the most frequent tokens first (ties: the later token in sorted
order first, as Keras), at most ``max_tokens`` entries including the reserved ones.

- ``output_mode="int"``: vocabulary ``["", "[UNK]", ...]`` (0 pads, 1 is any unknown
  token); each string gives its token indices, padded with 0 or cut at the end to
  ``output_sequence_length`` (default: the longest string of the batch);
- "multi_hot", "count", "tf_idf": vocabulary ``["[UNK]", ...]``; each string gives one row
  of ``vocabulary_size`` values: 1 where a token occurs, its count, or its count times
  ``idf = log(1 + documents / (1 + documents containing the token))`` (adapted; the
  unknown token gets the mean idf).

Strings come as a list or array of shape (batch,) or (batch, 1). The vocabulary (and the
idf weights) are part of the config, so a saved model keeps them (Keras reads them there).
A Keras file whose layer was adapted keeps them elsewhere, and Keras 3's saving hooks read
them: the vocabulary from ``assets/<layer path>/vocabulary.txt`` (``load_assets``), the
tf-idf weights from the layer's ``vars/idf_weights`` (``load_own_variables``). dendrite
writes ``vars/idf_weights`` too, here and under ``_lookup_layer`` (where Keras' layer keeps
its inner StringLookup), so Keras finds them.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.layers.preprocessing import VocabularyLayer, read_vocabulary
from dendrite.layers.registry import register_layer

_PUNCTUATION = re.compile(r"[!\"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~']")
# Keras lower-cases with TensorFlow's ``tf.strings.lower``, which changes ASCII letters only
# ("ÉCOLE" -> "École"): the same here, so that a vocabulary adapted by Keras matches.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


_OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")
_MASK, _OOV = "", "[UNK]"


def _standardizer(standardize: Any) -> Callable[[str], str]:
    if standardize is None:
        return lambda text: text
    if callable(standardize):
        return standardize
    if standardize == "lower_and_strip_punctuation":
        return lambda text: _PUNCTUATION.sub("", _lower(text))
    if standardize == "lower":
        return _lower
    if standardize == "strip_punctuation":
        return lambda text: _PUNCTUATION.sub("", text)
    raise ValueError(
        f"Invalid value for argument `standardize`: {standardize!r}. Expected None, "
        f"'lower_and_strip_punctuation', 'lower', 'strip_punctuation' or a callable."
    )


def _splitter(split: Any) -> Callable[[str], list[str]]:
    if split is None:
        return lambda text: [text]
    if callable(split):
        return split
    if split == "whitespace":
        return str.split
    if split == "character":
        return list
    raise ValueError(
        f"Invalid value for argument `split`: {split!r}. Expected None, 'whitespace', "
        f"'character' or a callable."
    )


@register_layer
class TextVectorization(VocabularyLayer):
    """Strings to token indices, multi-hot rows, counts or tf-idf (see the module docstring).

    Args:
        max_tokens: the vocabulary's maximum size, reserved entries included (None: no cap).
        standardize: 'lower_and_strip_punctuation', 'lower', 'strip_punctuation', None or a
            callable str -> str.
        split: 'whitespace', 'character', None or a callable str -> list of tokens.
        ngrams: None, an int n (n-grams of sizes 1..n) or a tuple of sizes.
        output_mode: 'int', 'multi_hot', 'count' or 'tf_idf'.
        output_sequence_length: 'int' mode: pad or cut every sequence to this length.
        pad_to_max_tokens: other modes: rows of ``max_tokens`` values even when the
            vocabulary is smaller.
        vocabulary: a list of tokens to use instead of ``adapt`` (without the reserved ones).
        idf_weights: 'tf_idf' with a given vocabulary: one weight per token.
    """

    def __init__(
        self,
        max_tokens: int | None = None,
        standardize: Any = "lower_and_strip_punctuation",
        split: Any = "whitespace",
        ngrams: Any = None,
        output_mode: str = "int",
        output_sequence_length: int | None = None,
        pad_to_max_tokens: bool = False,
        vocabulary: Any = None,
        idf_weights: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("sparse", None)
        kwargs.pop("ragged", None)
        kwargs.pop("encoding", None)
        declared = kwargs.pop("vocabulary_size", None)
        self._declared_size = declared if isinstance(declared, int) and declared > 0 else None
        kwargs.setdefault("dtype", "int64" if output_mode == "int" else "float32")
        super().__init__(**kwargs)
        if output_mode not in _OUTPUT_MODES:
            raise ValueError(
                f"Invalid value for argument `output_mode`: {output_mode!r}. Expected one of "
                f"{', '.join(_OUTPUT_MODES)}."
            )
        if max_tokens is not None and max_tokens < (2 if output_mode == "int" else 1) + 1:
            raise ValueError(
                f"`max_tokens` must leave room for at least one token beyond the reserved "
                f"ones. Received: max_tokens={max_tokens}"
            )
        if output_sequence_length is not None and output_mode != "int":
            raise ValueError(
                "`output_sequence_length` is only valid with output_mode='int'. Received: "
                f"output_mode={output_mode!r}"
            )
        self.max_tokens = max_tokens
        self.standardize = standardize
        self.split = split
        self.ngrams = ngrams
        self.output_mode = output_mode
        self.output_sequence_length = output_sequence_length
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self._standardize = _standardizer(standardize)
        self._split = _splitter(split)
        self._sizes = self._ngram_sizes(ngrams)
        self._vocabulary: list[str] = []
        self._index: dict[str, int] = {}
        self._idf: np.ndarray | None = None
        self._pending_idf: np.ndarray | None = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
        self.built = True

    @staticmethod
    def _ngram_sizes(ngrams: Any) -> tuple[int, ...]:
        if ngrams is None:
            return (1,)
        if isinstance(ngrams, int):
            return tuple(range(1, ngrams + 1))
        return tuple(int(n) for n in ngrams)

    # --- tokens -------------------------------------------------------------------------
    def _tokens(self, text: Any) -> list[str]:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        words = self._split(self._standardize(str(text)))
        tokens = []
        for n in self._sizes:
            tokens += [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
        return tokens

    def _texts(self, data: Any) -> list:
        array = np.asarray(data.data if isinstance(data, Tensor) else data, dtype=object)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise ValueError(
                f"Layer '{self.name}' (TextVectorization) expects a batch of strings of shape "
                f"(batch,) or (batch, 1), received shape {array.shape}."
            )
        return list(array)

    # --- vocabulary ---------------------------------------------------------------------
    def _reserved(self) -> list[str]:
        return [_MASK, _OOV] if self.output_mode == "int" else [_OOV]

    def adapt(self, data: Iterable[Any], batch_size: Any = None, steps: Any = None) -> None:
        """Build the vocabulary (and, for tf_idf, the idf weights) from ``data``."""
        texts = self._texts(data)
        counts: Counter = Counter()
        documents: Counter = Counter()
        for text in texts:
            tokens = self._tokens(text)
            counts.update(tokens)
            documents.update(set(tokens))
        ranked = sorted(counts.items(), key=lambda item: (item[1], item[0]), reverse=True)
        room = None if self.max_tokens is None else self.max_tokens - len(self._reserved())
        tokens = [token for token, _ in ranked[:room]]
        idf = None
        if self.output_mode == "tf_idf":
            idf = [math.log(1 + len(texts) / (1 + documents[token])) for token in tokens]
        self.set_vocabulary(tokens, idf)

    def set_vocabulary(self, vocabulary: Iterable[str], idf_weights: Any = None) -> None:
        """Use ``vocabulary`` (tokens, without the reserved entries)."""
        tokens = [str(token) for token in vocabulary]
        reserved = self._reserved()
        tokens = [token for token in tokens if token not in reserved]
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"Layer '{self.name}': the vocabulary has repeated tokens.")
        if self.max_tokens is not None and len(tokens) + len(reserved) > self.max_tokens:
            raise ValueError(
                f"Layer '{self.name}': a vocabulary of {len(tokens) + len(reserved)} entries "
                f"(reserved ones included) exceeds max_tokens={self.max_tokens}."
            )
        if self.output_mode == "tf_idf":
            received = None if idf_weights is None else len(idf_weights)
            if received != len(tokens):
                raise ValueError(
                    f"Layer '{self.name}': output_mode='tf_idf' needs one idf weight per token "
                    f"({len(tokens)}); received {received}."
                )
            weights = np.asarray(idf_weights, dtype=np.float64)
            mean = float(weights.mean()) if len(weights) else 0.0
            self._idf = np.concatenate([[mean], weights])
        self._vocabulary = reserved + tokens
        self._index = {token: i for i, token in enumerate(self._vocabulary)}

    def get_vocabulary(self) -> list[str]:
        return list(self._vocabulary)

    def vocabulary_size(self) -> int:
        return len(self._vocabulary)

    # --- calling ------------------------------------------------------------------------
    def _width(self) -> int:
        if self.pad_to_max_tokens and self.max_tokens is not None:
            return self.max_tokens
        if not self._vocabulary:
            return self._declared_size or 0
        return len(self._vocabulary)

    def _has_vocabulary(self) -> bool:
        return bool(self._vocabulary)

    def call(self, inputs: Any) -> Tensor:
        if not self._vocabulary:
            if not self._on_placeholders() or (self.output_mode != "int" and not self._width()):
                raise ValueError(
                    f"Layer '{self.name}' (TextVectorization) has no vocabulary: call "
                    f"adapt(texts) or pass vocabulary= first."
                )
            batch = len(self._texts(inputs))
            if self.output_mode == "int":
                return Tensor._make(np.zeros((batch, self.output_sequence_length or 1), np.int64))
            return Tensor._make(np.zeros((batch, self._width() or 1), self.dtype))
        oov = self._index[_OOV]
        rows = [
            [self._index.get(token, oov) for token in self._tokens(text)]
            for text in self._texts(inputs)
        ]
        if self.output_mode == "int":
            length = self.output_sequence_length
            if length is None:
                length = max((len(row) for row in rows), default=0)
            out = np.zeros((len(rows), length), dtype=np.int64)
            for i, row in enumerate(rows):
                row = row[:length]
                out[i, : len(row)] = row
            return Tensor._make(out)  # int64, as Keras, whatever the config's dtype
        out = np.zeros((len(rows), self._width()), dtype=np.float64)
        for i, row in enumerate(rows):
            np.add.at(out[i], row, 1.0)
        if self.output_mode == "multi_hot":
            out = (out > 0).astype(np.float64)
        elif self.output_mode == "tf_idf":
            out[:, : len(self._idf)] *= self._idf
        return Tensor._make(out.astype(self.dtype))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        batch = tuple(input_shape)[0] if input_shape else None
        if self.output_mode == "int":
            return (batch, self.output_sequence_length)
        return (batch, self._width() or None)

    # --- saving (Keras 3's hooks) ---------------------------------------------------------
    # Keras' TextVectorization keeps its state in an inner StringLookup as well, saved under
    # `_lookup_layer`: dendrite writes its store there too (layer_state).
    keras_state_aliases = ("_lookup_layer",)

    def save_own_variables(self, store: Any) -> None:
        """Keras' layout: tf-idf weights (the OOV entry first; padded to ``max_tokens``
        with ``pad_to_max_tokens``) as ``idf_weights``."""
        if self.output_mode == "tf_idf" and self._idf is not None:
            weights = np.asarray(self._idf, dtype=np.float32)
            if self.pad_to_max_tokens and self.max_tokens is not None:
                weights = np.pad(weights, (0, max(self.max_tokens - len(weights), 0)))
            store["idf_weights"] = weights

    def load_own_variables(self, store: Any) -> None:
        """Keras' layout: tf-idf weights, applied with the vocabulary (config or assets)."""
        if self.output_mode != "tf_idf" or "idf_weights" not in store:
            return
        weights = np.asarray(store["idf_weights"], dtype=np.float64).ravel()
        if self._vocabulary:
            if len(weights) < len(self._vocabulary):
                raise ValueError(
                    f"Layer '{self.name}': {len(weights)} idf weights for a vocabulary of "
                    f"{len(self._vocabulary)}."
                )
            self._idf = weights[: len(self._vocabulary)]
        else:
            self._pending_idf = weights

    def load_assets(self, dir_path: str) -> None:
        """Read Keras' ``vocabulary.txt`` (reserved tokens first) when the config did not
        carry the vocabulary (an adapted layer saved by Keras)."""
        if self._vocabulary:
            return  # the config's vocabulary (Keras does the same)
        lines = read_vocabulary(dir_path, self.name)
        reserved = self._reserved()
        if lines[: len(reserved)] != reserved:
            raise ValueError(
                f"Layer '{self.name}': vocabulary.txt does not start with the reserved "
                f"tokens {reserved} of output_mode={self.output_mode!r}."
            )
        tokens = lines[len(reserved) :]
        idf = None
        if self.output_mode == "tf_idf":
            pending = self._pending_idf
            if pending is None or len(pending) < len(lines):
                raise ValueError(
                    f"Layer '{self.name}': a tf-idf vocabulary of {len(lines)} entries needs "
                    f"as many idf_weights in the file."
                )
            idf = pending[len(reserved) : len(lines)]
        self.set_vocabulary(tokens, idf)
        if self.output_mode == "tf_idf":
            self._idf = np.asarray(self._pending_idf[: len(lines)], dtype=np.float64)
            self._pending_idf = None

    def get_config(self) -> dict:
        if not (self.standardize is None or isinstance(self.standardize, str)) or not (
            self.split is None or isinstance(self.split, str)
        ):
            raise ValueError(
                f"Layer '{self.name}': a callable `standardize` or `split` cannot be saved in "
                f"a config."
            )
        reserved = len(self._reserved())
        return {
            **super().get_config(),
            "max_tokens": self.max_tokens,
            "standardize": self.standardize,
            "split": self.split,
            "ngrams": list(self.ngrams) if isinstance(self.ngrams, tuple) else self.ngrams,
            "output_mode": self.output_mode,
            "output_sequence_length": self.output_sequence_length,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "vocabulary": self._vocabulary[reserved:] or None,
            "idf_weights": None if self._idf is None else self._idf[1:].tolist(),
        }
