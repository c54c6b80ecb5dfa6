"""``ops.ctc_decode``: greedy decoding on hand-made paths (repeats merged, blanks removed,
lengths respected), beam search against a brute-force ranking of every labelling, Keras'
shapes and padding, a symbolic call in a model, and its errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import dendrite as tf

ops = tf.ops


def brute_force(logits: np.ndarray, blank: int) -> dict:
    """p(labelling) for one sample's (T, C) logits: every path's probability summed into
    its collapse (runs merged, blanks dropped); the same as in test_ctc_loss.py."""
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    found: dict = {}
    for path in itertools.product(range(probs.shape[1]), repeat=probs.shape[0]):
        merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
        key = tuple(c for c in merged if c != blank)
        found[key] = found.get(key, 0.0) + np.prod(probs[np.arange(len(path)), path])
    return found


def _logits_of(paths, classes: int, sharp: float = 5.0) -> np.ndarray:
    """Logits whose argmax over each frame is the given path (one path per row)."""
    paths = np.asarray(paths)
    return np.eye(classes, dtype="float32")[paths] * sharp


def test_greedy_merges_repeats_then_removes_blanks():
    # blank 0: "1 1 0 1 2 2 0" -> 1 1 2; "3 0 3 3 0 0 2" -> 3 3 2; "0 ... 0" -> nothing
    paths = [[1, 1, 0, 1, 2, 2, 0], [3, 0, 3, 3, 0, 0, 2], [0] * 7]
    decoded, scores = ops.ctc_decode(_logits_of(paths, 4), np.array([7, 7, 7]))
    assert decoded.shape == (1, 3, 7) and decoded.dtype == np.int32
    assert scores.shape == (3, 1) and scores.dtype == np.float32
    np.testing.assert_array_equal(
        decoded.numpy()[0],
        [[1, 1, 2, -1, -1, -1, -1], [3, 3, 2, -1, -1, -1, -1], [-1] * 7],
    )
    np.testing.assert_allclose(scores.numpy(), [[-35.0]] * 3)  # Keras: -sum of the max logits
    kept, _ = ops.ctc_decode(_logits_of(paths, 4), np.array([7, 7, 7]), merge_repeated=False)
    np.testing.assert_array_equal(kept.numpy()[0, 0], [1, 1, 1, 2, 2, -1, -1])


def test_greedy_respects_lengths_and_the_blank_index():
    paths = [[2, 1, 1, 3, 2, 2], [1, 3, 3, 1, 2, 3]]
    logits = _logits_of(paths, 4)
    decoded, scores = ops.ctc_decode(logits, np.array([4, 0]), mask_index=3)
    np.testing.assert_array_equal(decoded.numpy()[0], [[2, 1, -1, -1, -1, -1], [-1] * 6])
    np.testing.assert_allclose(scores.numpy(), [[-20.0], [0.0]])
    last, _ = ops.ctc_decode(logits, np.array([6, 6]), mask_index=None)  # None: the last class
    np.testing.assert_array_equal(last.numpy(), ops.ctc_decode(logits, [6, 6], mask_index=3)[0])


def test_beam_search_ranks_labellings_as_the_sum_over_alignments():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 4, 3)) * 1.5  # float64 stays float64
    for blank in (0, 1):
        decoded, scores = ops.ctc_decode(
            logits, [4, 4], strategy="beam_search", beam_width=40, top_paths=3, mask_index=blank
        )
        assert decoded.shape == (3, 2, 4) and scores.shape == (2, 3)
        assert scores.dtype == np.float64
        for i in range(2):
            exact = brute_force(logits[i], blank)
            ranked = sorted(exact, key=exact.get, reverse=True)[:3]
            for k, labelling in enumerate(ranked):
                row = decoded.numpy()[k, i]
                assert tuple(row[row >= 0]) == labelling
                assert (row[len(labelling) :] == -1).all()
                np.testing.assert_allclose(scores.numpy()[i, k], np.log(exact[labelling]))
            # the best labelling's probability is exp(-ctc_loss) of it
            best = ranked[0]
            loss = ops.ctc_loss(
                [list(best) or [0]], logits[i : i + 1], [len(best)], [4], mask_index=blank
            )
            np.testing.assert_allclose(-loss.numpy()[0], scores.numpy()[i, 0], rtol=1e-10)


def test_beam_search_finds_what_greedy_misses():
    # Frames (blank, a): the best path is "- - " (p = .36), but "a" sums three paths:
    # a a, a -, - a = .16 + .24 + .24 = .64.
    probs = np.array([[[0.6, 0.4], [0.6, 0.4]]])
    logits = np.log(probs)
    greedy, _ = ops.ctc_decode(logits, [2])
    beam, score = ops.ctc_decode(logits, [2], strategy="beam_search", beam_width=4)
    assert (greedy.numpy() == -1).all()
    np.testing.assert_array_equal(beam.numpy()[0, 0], [1, -1])
    np.testing.assert_allclose(score.numpy(), [[np.log(0.64)]])


def test_beam_search_short_sequences_and_few_labellings():
    logits = np.log(np.array([[[0.9, 0.1], [0.5, 0.5]], [[0.2, 0.8], [0.3, 0.7]]]))
    decoded, scores = ops.ctc_decode(
        logits, [1, 0], strategy="beam_search", beam_width=3, top_paths=3
    )
    # one frame: "" (0.9) and "1" (0.1), then nothing: padded with -1 and -inf
    np.testing.assert_array_equal(decoded.numpy()[:, 0, 0], [-1, 1, -1])
    np.testing.assert_allclose(scores.numpy()[0], [np.log(0.9), np.log(0.1), -np.inf])
    # no frames: the empty labelling, for certain
    np.testing.assert_array_equal(decoded.numpy()[:, 1], -1)
    np.testing.assert_allclose(scores.numpy()[1], [0.0, -np.inf, -np.inf])


def test_a_model_decodes_symbolically():
    x = tf.keras.Input((6, 5))
    lengths = tf.keras.Input((), dtype="int32")
    decoded, scores = ops.ctc_decode(x, lengths)
    assert decoded.shape == (1, None, 6) and scores.shape == (None, 1)
    model = tf.keras.Model([x, lengths], [decoded, scores])
    data = np.random.default_rng(1).standard_normal((3, 6, 5)).astype("float32")
    got = model.predict([data, np.array([6, 4, 0])], verbose=0)
    want = ops.ctc_decode(data, np.array([6, 4, 0]))
    np.testing.assert_array_equal(got[0], want[0].numpy())
    np.testing.assert_allclose(got[1], want[1].numpy())


def test_clear_errors():
    z = np.zeros((2, 5, 4), "float32")
    with pytest.raises(
        ValueError, match=r"ctc_decode: inputs .*\(batch, time, classes\).*\(2, 5\)"
    ):
        ops.ctc_decode(z[..., 0], [5, 5])
    with pytest.raises(ValueError, match=r"sequence_lengths must have shape \(batch,\) = \(2,\)"):
        ops.ctc_decode(z, [5])
    with pytest.raises(ValueError, match=r"sequence_lengths must be in \[0, 5\]; received 7"):
        ops.ctc_decode(z, [7, 5])
    with pytest.raises(ValueError, match="Supported values are 'greedy' and 'beam_search'"):
        ops.ctc_decode(z, [5, 5], strategy="best")
    with pytest.raises(ValueError, match="top_paths must be at most beam_width"):
        ops.ctc_decode(z, [5, 5], strategy="beam_search", beam_width=2, top_paths=3)
    with pytest.raises(ValueError, match="beam_width must be a positive int"):
        ops.ctc_decode(z, [5, 5], strategy="beam_search", beam_width=0)
    with pytest.raises(ValueError, match=r"mask_index must be in \[0, 4\)"):
        ops.ctc_decode(z, [5, 5], mask_index=9)
