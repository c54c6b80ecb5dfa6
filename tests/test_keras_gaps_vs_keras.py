"""Circle and CategoricalGeneralizedCrossEntropy (every reduction, sample weights), the
correlation metrics (several weighted batches, reset_state), keras.metrics' loss-function
aliases, keras.tree and keras.utils.Config: against Keras 3 itself, on the same inputs, in
a subprocess (KERAS_BACKEND=torch)."""

from __future__ import annotations

import collections
import json
import textwrap

import numpy as np
import pytest

import dendrite as keras
from dendrite.testing.keras_side import run_keras_side

REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None]


def _arrays() -> dict:
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((8, 5)).astype("float32")
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return {
        "emb": emb,
        "labels": np.array([0, 0, 1, 1, 1, 2, 3, 0], dtype="int32"),  # 2 and 3: alone
        "probs": rng.dirichlet(np.ones(4), size=8).astype("float32"),
        "cls": rng.integers(0, 4, 8).astype("int32"),
        "weights": rng.random(8).astype("float32"),
        "yt": rng.standard_normal((3, 8, 6)).astype("float32"),
        "yp": rng.standard_normal((3, 8, 6)).astype("float32"),
        "sw": rng.random((3, 8)).astype("float32"),
        "bin_t": (rng.random((8, 3)) > 0.5).astype("float32"),
        "bin_p": rng.random((8, 3)).astype("float32") * 0.98 + 0.01,
    }


KERAS_SIDE = textwrap.dedent(
    """
    import collections, json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    a = dict(np.load(root + "/in.npz", allow_pickle=False))
    out = {}
    reductions = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None]
    for i, r in enumerate(reductions):
        for w in (None, a["weights"]):
            tag = f"{i}_{w is not None}"
            c = keras.losses.Circle(reduction=r, gamma=30.0, margin=0.3)
            out["circle_" + tag] = np.asarray(c(a["labels"], a["emb"], sample_weight=w)).tolist()
            g = keras.losses.CategoricalGeneralizedCrossEntropy(q=0.7, reduction=r)
            out["gce_" + tag] = np.asarray(g(a["cls"], a["probs"], sample_weight=w)).tolist()
    out["circle_fn"] = np.asarray(keras.losses.circle(a["labels"], a["emb"])).tolist()
    out["circle_ref"] = np.asarray(keras.losses.circle(
        a["labels"], a["emb"], ref_labels=a["labels"][:5], ref_embeddings=a["emb"][:5],
        remove_diagonal=False)).tolist()
    for name in ("PearsonCorrelation", "ConcordanceCorrelation"):
        m = getattr(keras.metrics, name)()
        results = []
        for b in range(3):
            m.update_state(a["yt"][b], a["yp"][b], sample_weight=a["sw"][b])
            results.append(float(m.result()))
        m.reset_state()
        results.append(float(m.result()))
        m.update_state(a["yt"][0], a["yp"][0])
        results.append(float(m.result()))
        m2 = getattr(keras.metrics, name)(axis=0)
        m2.update_state(a["yt"][1], a["yp"][1])
        results.append(float(m2.result()))
        out[name] = results
        out[name + "_config"] = m.get_config()
    for fn in ("pearson_correlation", "concordance_correlation"):
        out[fn] = np.asarray(getattr(keras.metrics, fn)(a["yt"][0], a["yp"][0])).tolist()
    out["huber"] = np.asarray(keras.metrics.huber(a["yt"][0], a["yp"][0], delta=0.7)).tolist()
    out["bfc"] = np.asarray(keras.metrics.binary_focal_crossentropy(
        a["bin_t"], a["bin_p"], gamma=1.5)).tolist()
    out["cfc"] = np.asarray(keras.metrics.categorical_focal_crossentropy(
        np.eye(4)[a["cls"]], a["probs"])).tolist()
    T = keras.tree
    Point = collections.namedtuple("Point", ["x", "y"])
    nested = {"b": [1, (2, 3)], "a": {"y": None, "z": 4}, "c": Point(5, [6])}
    out["tree_flatten"] = T.flatten(nested)
    out["tree_paths"] = [[list(p), v] for p, v in T.flatten_with_path(nested)]
    def canon(x):  # dict order aside (torch keeps sorted keys, optree the template's)
        return [[list(p), v] for p, v in T.flatten_with_path(x)] + [type(x["c"]).__name__]
    out["tree_map"] = canon(T.map_structure(lambda v: None if v is None else v * 10, nested))
    out["tree_pack"] = canon(T.pack_sequence_as(nested, list(range(7))))
    out["tree_odict"] = T.flatten(collections.OrderedDict([("b", 1), ("a", 2)]))
    out["tree_up_to"] = repr(T.map_structure_up_to([None, [None, None]], str, [[1, 1], [2, 2]]))
    out["tree_l2t"] = repr(T.lists_to_tuples([1, [2, {"a": [3]}]]))
    shapes = {"a": (None, 3), "b": [(2,), (4, 5)]}
    out["tree_shape"] = repr(T.map_shape_structure(lambda s: len(s), shapes))
    seen = []
    walked = [(1, 2), [3], {"a": 4}]
    out["tree_trav_down"] = repr(T.traverse(lambda x: seen.append(repr(x)), walked))
    out["tree_trav_down_seen"] = seen
    seen2 = []
    T.traverse(lambda x: seen2.append(repr(x)), [(1, 2), [3], {"a": 4}], top_down=False)
    out["tree_trav_up_seen"] = seen2
    out["tree_trav_replace"] = repr(T.traverse(
        lambda x: T.MAP_TO_NONE if isinstance(x, tuple) else None, [(1, 2), [3]]))
    checks = {}
    for tag, (x, y) in {
        "same": ([(0, 1)], [(2, 3)]), "list_tuple": ([0, 1], (0, 1)),
        "len": ([0, 1], [0]), "keys": ({"a": 1}, {"b": 1}),
        "nt": (Point(0, 1), collections.namedtuple("Point", ["x", "y"])(0, 1)),
        "leaf": ([0, [1]], [0, 1]),
    }.items():
        try:
            T.assert_same_structure(x, y); checks[tag] = "ok"
        except ValueError:
            checks[tag] = "ValueError"
        try:
            T.assert_same_paths(x, y); checks[tag + "_paths"] = "ok"
        except ValueError:
            checks[tag + "_paths"] = "ValueError"
    out["tree_checks"] = checks
    values = (1, None, [1], (), {"a": 1}, "ab", np.zeros(2))
    out["tree_is_nested"] = [T.is_nested(v) for v in values]
    cfg = keras.utils.Config(b=2, a=1)
    cfg.c = 3
    cfg["d"] = [4]
    out["config"] = [list(cfg), cfg.to_json(), len(cfg), cfg.get("zz", 9), sorted(cfg.as_dict())]
    cfg.freeze()
    try:
        cfg.e = 1; out["config_frozen"] = "no error"
    except ValueError as e:
        out["config_frozen"] = str(e)
    json.dump(out, open(root + "/out.json", "w"))
    """
)


@pytest.fixture(scope="module")
def keras_out(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("keras_gaps")
    np.savez(root / "in.npz", **_arrays())
    run_keras_side(KERAS_SIDE, root)
    return json.loads((root / "out.json").read_text())


def _close(ours, theirs, atol=1e-5) -> float:
    ours = np.asarray(keras.ops.convert_to_numpy(ours), dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    diff = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    assert np.allclose(ours, theirs, atol=atol, rtol=1e-5, equal_nan=True), (ours, theirs)
    return diff


@pytest.mark.parametrize("i", range(len(REDUCTIONS)))
@pytest.mark.parametrize("weighted", [False, True])
def test_losses_match_keras_every_reduction(keras_out, i, weighted) -> None:
    a = _arrays()
    w = a["weights"] if weighted else None
    r = REDUCTIONS[i]
    circle = keras.losses.Circle(reduction=r, gamma=30.0, margin=0.3)
    _close(
        circle(a["labels"], a["emb"], sample_weight=w), keras_out[f"circle_{i}_{weighted}"], 1e-4
    )
    gce = keras.losses.CategoricalGeneralizedCrossEntropy(q=0.7, reduction=r)
    _close(gce(a["cls"], a["probs"], sample_weight=w), keras_out[f"gce_{i}_{weighted}"])


def test_circle_function_and_references_match_keras(keras_out) -> None:
    a = _arrays()
    _close(keras.losses.circle(a["labels"], a["emb"]), keras_out["circle_fn"], 1e-3)
    ours = keras.losses.circle(
        a["labels"],
        a["emb"],
        ref_labels=a["labels"][:5],
        ref_embeddings=a["emb"][:5],
        remove_diagonal=False,
    )
    _close(ours, keras_out["circle_ref"], 1e-3)


@pytest.mark.parametrize("name", ["PearsonCorrelation", "ConcordanceCorrelation"])
def test_correlation_metrics_stream_like_keras(keras_out, name) -> None:
    a = _arrays()
    m = getattr(keras.metrics, name)()
    results = []
    for b in range(3):
        m.update_state(a["yt"][b], a["yp"][b], sample_weight=a["sw"][b])
        results.append(float(m.result()))
    m.reset_state()
    results.append(float(m.result()))
    m.update_state(a["yt"][0], a["yp"][0])
    results.append(float(m.result()))
    m2 = getattr(keras.metrics, name)(axis=0)
    m2.update_state(a["yt"][1], a["yp"][1])
    results.append(float(m2.result()))
    _close(results, keras_out[name])
    assert m.get_config() == keras_out[name + "_config"]
    again = type(m).from_config(m.get_config())
    assert again.name == m.name and again.axis == m.axis


def test_metric_function_aliases_match_keras(keras_out) -> None:
    a = _arrays()
    M = keras.metrics
    _close(M.pearson_correlation(a["yt"][0], a["yp"][0]), keras_out["pearson_correlation"])
    _close(M.concordance_correlation(a["yt"][0], a["yp"][0]), keras_out["concordance_correlation"])
    _close(M.huber(a["yt"][0], a["yp"][0], delta=0.7), keras_out["huber"])
    _close(M.binary_focal_crossentropy(a["bin_t"], a["bin_p"], gamma=1.5), keras_out["bfc"])
    _close(M.categorical_focal_crossentropy(np.eye(4)[a["cls"]], a["probs"]), keras_out["cfc"])


def test_tree_matches_keras(keras_out) -> None:
    T = keras.tree
    Point = collections.namedtuple("Point", ["x", "y"])
    nested = {"b": [1, (2, 3)], "a": {"y": None, "z": 4}, "c": Point(5, [6])}
    assert T.flatten(nested) == keras_out["tree_flatten"]
    assert [[list(p), v] for p, v in T.flatten_with_path(nested)] == keras_out["tree_paths"]

    def canon(x):
        return [[list(p), v] for p, v in T.flatten_with_path(x)] + [type(x["c"]).__name__]

    assert (
        canon(T.map_structure(lambda v: None if v is None else v * 10, nested))
        == keras_out["tree_map"]
    )
    packed = T.pack_sequence_as(nested, list(range(7)))
    assert canon(packed) == keras_out["tree_pack"]
    assert list(packed) == list(nested)  # the template's key order, as optree
    assert T.flatten(collections.OrderedDict([("b", 1), ("a", 2)])) == keras_out["tree_odict"]
    assert (
        repr(T.map_structure_up_to([None, [None, None]], str, [[1, 1], [2, 2]]))
        == keras_out["tree_up_to"]
    )
    assert repr(T.lists_to_tuples([1, [2, {"a": [3]}]])) == keras_out["tree_l2t"]
    shapes = {"a": (None, 3), "b": [(2,), (4, 5)]}
    assert repr(T.map_shape_structure(lambda s: len(s), shapes)) == keras_out["tree_shape"]
    seen: list = []
    down = T.traverse(lambda x: seen.append(repr(x)), [(1, 2), [3], {"a": 4}])
    assert repr(down) == keras_out["tree_trav_down"]
    assert seen == keras_out["tree_trav_down_seen"]
    seen2: list = []
    T.traverse(lambda x: seen2.append(repr(x)), [(1, 2), [3], {"a": 4}], top_down=False)
    assert seen2 == keras_out["tree_trav_up_seen"]
    replaced = T.traverse(lambda x: T.MAP_TO_NONE if isinstance(x, tuple) else None, [(1, 2), [3]])
    assert repr(replaced) == keras_out["tree_trav_replace"]
    assert [T.is_nested(v) for v in (1, None, [1], (), {"a": 1}, "ab", np.zeros(2))] == keras_out[
        "tree_is_nested"
    ]


def test_tree_structure_checks_match_keras(keras_out) -> None:
    T = keras.tree
    Point = collections.namedtuple("Point", ["x", "y"])
    cases = {
        "same": ([(0, 1)], [(2, 3)]),
        "list_tuple": ([0, 1], (0, 1)),
        "len": ([0, 1], [0]),
        "keys": ({"a": 1}, {"b": 1}),
        "nt": (Point(0, 1), collections.namedtuple("Point", ["x", "y"])(0, 1)),
        "leaf": ([0, [1]], [0, 1]),
    }
    for tag, (x, y) in cases.items():
        for suffix, check in (("", T.assert_same_structure), ("_paths", T.assert_same_paths)):
            try:
                check(x, y)
                got = "ok"
            except ValueError:
                got = "ValueError"
            assert got == keras_out["tree_checks"][tag + suffix], (tag + suffix, got)


def test_config_matches_keras(keras_out) -> None:
    cfg = keras.utils.Config(b=2, a=1)
    cfg.c = 3
    cfg["d"] = [4]
    got = [list(cfg), cfg.to_json(), len(cfg), cfg.get("zz", 9), sorted(cfg.as_dict())]
    assert got == keras_out["config"]
    cfg.freeze()
    with pytest.raises(ValueError) as info:
        cfg.e = 1
    assert str(info.value) == keras_out["config_frozen"]


def test_tree_sorts_every_dict_by_key_as_documented() -> None:
    # Keras documents sorted keys at every level (optree, TensorFlow); its torch backend
    # keeps the insertion order of inner dicts. dendrite follows the documentation.
    nested = {"b": {"z": 1, "y": 2}, "a": 0}
    assert keras.tree.flatten(nested) == [0, 2, 1]
    packed = keras.tree.pack_sequence_as(nested, ["A", "Y", "Z"])
    assert packed == {"b": {"z": "Z", "y": "Y"}, "a": "A"}
    assert list(packed) == ["b", "a"] and list(packed["b"]) == ["z", "y"]
