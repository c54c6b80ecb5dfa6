"""Decoding a CTC model's output, as ``keras.ops.ctc_decode``: greedy and beam search.

A labelling is read from a path (one class per frame) by the collapse ``B``: merge runs of
the same class, then drop the blanks (``B(a a - a b b) = a a b``, with ``-`` the blank).
Its probability under frame-wise softmax outputs ``y_t`` is the sum over every path that
collapses to it, ``p(l | z) = sum_{B(pi) = l} prod_t y_t(pi_t)``.

- **greedy** (best path): ``pi_t = argmax_c z_t(c)``, then ``B`` (with
  ``merge_repeated=False`` only the blanks are dropped). Its score is Keras': minus the sum
  over frames of the largest *logit*, ``-sum_t max_c z_t(c)`` (not a log-probability).
- **beam search** (prefix beam search): after each frame keep the ``beam_width`` prefixes
  with the largest probability, each with two parts, ``p_b`` (paths ending in a blank) and
  ``p_nb`` (ending in its last label ``e``); with ``y = y_t`` in log space,

      p_b(l)      <- (p_b(l) + p_nb(l)) y(blank)
      p_nb(l)     <- p_nb(l) y(e)                                 (a repeat of e merges)
      p_nb(l + c) <- (p_b(l) + p_nb(l)) y(c)   for c != blank, c != e
      p_nb(l + e) <- p_b(l) y(e)                                  (a blank separates them)

  summing where an extension is a prefix already in the beam. The score of a labelling is
  ``log(p_b + p_nb)``: exactly ``log p(l | z)`` while no prefix of it was pruned, so with a
  beam wide enough to keep every prefix it is ``-ctc_loss``. ``merge_repeated`` does not
  apply (CTC always merges), as in Keras.

Keras' shapes: ``decoded`` is (top_paths, batch, T) int32, each labelling written from the
left and padded with -1 (greedy: top_paths = 1); the scores are (batch, top_paths). Frames
past a sample's ``sequence_lengths`` are ignored; a sample with no frames decodes to the
empty labelling with log-probability 0 (Keras' beam search reads its first frame anyway).
Beam search loops over the samples in Python (a decoder, not a training step); each frame's
candidates are whole-array work.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor, as_array
from dendrite.ops.ctc import _blank, _lengths, _log_softmax

_NEG_INF = -np.inf


def ctc_decode(
    inputs: Any,
    sequence_lengths: Any,
    strategy: str = "greedy",
    beam_width: int = 100,
    top_paths: int = 1,
    merge_repeated: bool = True,
    mask_index: int | None = 0,
) -> tuple[Tensor, Tensor]:
    """Decode logits into labellings (see the module docstring).

    Args:
        inputs: logits, (batch, T, classes); not softmax-normalised.
        sequence_lengths: (batch,) frame counts, in [0, T].
        strategy: "greedy" or "beam_search".
        beam_width: prefixes kept per frame (beam search).
        top_paths: labellings returned per sample (beam search), in [1, beam_width].
        merge_repeated: greedy only: merge runs of a class before dropping blanks.
        mask_index: the blank class (None: the last class; negative: from the end).

    Returns:
        ``(decoded, log_probabilities)``: (top_paths, batch, T) int32 labels padded with
        -1, and (batch, top_paths) scores (greedy: ``-sum_t max_c inputs``).
    """
    op = "ctc_decode"
    logits = as_array(inputs)
    if logits.dtype.kind != "f" or logits.dtype == np.float16:
        logits = logits.astype(np.float32)  # Keras' result_type(dtype, float32)
    if logits.ndim != 3:
        raise ValueError(
            f"{op}: inputs must be logits of shape (batch, time, classes); received inputs "
            f"with shape {logits.shape}."
        )
    n, frames, classes = logits.shape
    if classes == 0:
        raise ValueError(f"{op}: inputs must have at least one class; received {logits.shape}.")
    lengths = _lengths(sequence_lengths, "sequence_lengths", n, frames, op)
    blank = _blank(classes - 1 if mask_index is None else mask_index, classes, op)
    if strategy == "greedy":
        decoded, scores = _greedy(logits, lengths, blank, merge_repeated)
    elif strategy == "beam_search":
        for name, value in (("beam_width", beam_width), ("top_paths", top_paths)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{op}: {name} must be a positive int; received {value!r}.")
        if top_paths > beam_width:
            raise ValueError(
                f"{op}: top_paths must be at most beam_width; received top_paths={top_paths} "
                f"and beam_width={beam_width}."
            )
        log_probs = _log_softmax(logits)
        decoded = np.full((top_paths, n, frames), -1, dtype=np.int32)
        scores = np.full((n, top_paths), _NEG_INF, dtype=logits.dtype)
        for i in range(n):
            found = _beam_search(log_probs[i, : lengths[i]], blank, int(beam_width))
            for k, (labels, score) in enumerate(found[:top_paths]):
                decoded[k, i, : len(labels)] = labels
                scores[i, k] = score
    else:
        raise ValueError(
            f"{op}: invalid strategy {strategy!r}. Supported values are 'greedy' and 'beam_search'."
        )
    return Tensor._make(decoded), Tensor._make(scores)


def _greedy(
    logits: np.ndarray, lengths: np.ndarray, blank: int, merge_repeated: bool
) -> tuple[np.ndarray, np.ndarray]:
    n, frames, _ = logits.shape
    best = np.argmax(logits, axis=-1)
    top = np.max(logits, axis=-1)
    outside = np.arange(frames)[None, :] >= lengths[:, None]
    best[outside] = blank
    top[outside] = 0.0
    drop = best == blank
    if merge_repeated:
        drop[:, 1:] |= best[:, 1:] == best[:, :-1]
    keep = ~drop
    # move the kept labels to the left of each row, in order
    decoded = np.full((n, frames), -1, dtype=np.int32)
    columns = np.cumsum(keep, axis=1) - 1
    rows = np.broadcast_to(np.arange(n)[:, None], best.shape)
    decoded[rows[keep], columns[keep]] = best[keep]
    scores = -np.sum(top, axis=1, keepdims=True)
    return decoded[None], scores.astype(logits.dtype, copy=False)


def _beam_search(log_probs: np.ndarray, blank: int, beam_width: int) -> list[tuple]:
    """Prefix beam search over one sample's (T, classes) log-probabilities: the kept
    labellings with their log-probabilities, best first."""
    dtype = log_probs.dtype
    prefixes: list[tuple] = [()]
    p_b = np.zeros(1, dtype=dtype)  # log 1: the empty prefix before any frame
    p_nb = np.full(1, _NEG_INF, dtype=dtype)
    for y in log_probs:
        total = np.logaddexp(p_b, p_nb)
        tails = np.array([p[-1] if p else -1 for p in prefixes], dtype=np.intp)
        has_tail = tails >= 0
        beams = np.arange(len(prefixes))
        new_b = total + y[blank]
        new_nb = np.where(has_tail, p_nb + y[np.maximum(tails, 0)], _NEG_INF)
        extend = total[:, None] + y[None, :]  # (beams, classes): l + c
        # after its own last label, only the paths ending in a blank extend the prefix
        extend[beams[has_tail], tails[has_tail]] = p_b[has_tail] + y[tails[has_tail]]
        extend[:, blank] = _NEG_INF
        # an extension that is already a prefix in the beam is summed into it
        where = {prefix: j for j, prefix in enumerate(prefixes)}
        for j, prefix in enumerate(prefixes):
            parent = where.get(prefix[:-1]) if prefix else None
            if parent is not None:
                new_nb[j] = np.logaddexp(new_nb[j], extend[parent, prefix[-1]])
                extend[parent, prefix[-1]] = _NEG_INF
        candidates = np.concatenate([np.logaddexp(new_b, new_nb), extend.reshape(-1)])
        order = np.argsort(-candidates, kind="stable")[:beam_width]
        order = order[np.isfinite(candidates[order])]
        kept, kept_b, kept_nb = [], [], []
        classes = y.shape[0]
        for index in order.tolist():
            if index < len(prefixes):
                kept.append(prefixes[index])
                kept_b.append(new_b[index])
                kept_nb.append(new_nb[index])
            else:
                parent, label = divmod(index - len(prefixes), classes)
                kept.append((*prefixes[parent], label))
                kept_b.append(_NEG_INF)
                kept_nb.append(candidates[index])
        prefixes = kept
        p_b = np.array(kept_b, dtype=dtype)
        p_nb = np.array(kept_nb, dtype=dtype)
    total = np.logaddexp(p_b, p_nb)
    order = np.argsort(-total, kind="stable")
    return [(prefixes[k], total[k]) for k in order.tolist()]
