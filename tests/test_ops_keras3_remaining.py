"""The last keras.ops dendrite lacked: polar, view_as_complex, view_as_real, view,
adaptive_average_pool, adaptive_max_pool, associative_scan, get_item, and
image.perspective_transform / elastic_transform / scale_and_translate / sobel_edges / ssim,
plus the ``keras.ops.nn`` / ``linalg`` / ``numpy`` namespaces.

Real Keras 3 (the PyTorch backend, in a subprocess) runs the same calls on the same arrays:
same shapes, dtypes and values, the same signatures, the same namespace listings. Without
Keras: known values, float64, errors, gradients against finite differences, symbolic
tensors in functional models.
"""

from __future__ import annotations

import importlib.util
import inspect
import json

import numpy as np
import pytest

import dendrite as keras
from dendrite import ops
from dendrite.core import Tensor
from dendrite.ops import namespaces
from dendrite.testing import gradcheck
from dendrite.testing.keras_side import run_keras_side

# Evaluated as written with ``ops`` bound to keras.ops in a subprocess and to dendrite.ops
# here.
KERAS_CALLS = {
    # --- complex numbers and views
    "polar": "ops.polar(P, S)",
    "polar_float64": "ops.polar(P.astype('float64'), S.astype('float64'))",
    "polar_int": "ops.polar(I, I - 1)",
    "polar_broadcast": "ops.polar(P[:1], S)",
    "nn_polar": "ops.nn.polar(A, B)",
    "view_as_complex": "ops.view_as_complex(PAIRS)",
    "view_as_complex_float64": "ops.view_as_complex(PAIRS.astype('float64'))",
    "view_as_real": "ops.view_as_real(Z)",
    "view_as_real_complex128": "ops.view_as_real(Z.astype('complex128'))",
    "round_trip": "ops.view_as_real(ops.view_as_complex(PAIRS))",
    "view_int_to_float": "ops.view(I, 'float32')",
    "view_narrower": "ops.view(I, 'int16')",
    "view_wider": "ops.view(I.astype('int16'), 'int32')",
    "view_bytes": "ops.view(A, 'uint8')",
    "view_same": "ops.view(A, 'float32')",
    "numpy_view": "ops.numpy.view(A, 'int32')",
    # --- adaptive pooling (uneven, overlapping windows; more outputs than inputs)
    "adaptive_average_1d": "ops.adaptive_average_pool(X1, 4)",
    "adaptive_average_2d": "ops.adaptive_average_pool(X2, (3, 4))",
    "adaptive_average_2d_up": "ops.adaptive_average_pool(X2, (9, 11))",
    "adaptive_average_3d": "ops.adaptive_average_pool(X3, (2, 4, 3))",
    "adaptive_average_first": "ops.adaptive_average_pool(X2.transpose(0, 3, 1, 2), 5, "
    "data_format='channels_first')",
    "adaptive_max_1d": "ops.adaptive_max_pool(X1, 5)",
    "adaptive_max_2d": "ops.adaptive_max_pool(X2, (4, 2))",
    "adaptive_max_2d_up": "ops.nn.adaptive_max_pool(X2, (8, 13))",
    "adaptive_max_3d": "ops.adaptive_max_pool(X3, 3)",
    "adaptive_max_first": "ops.adaptive_max_pool(X3.transpose(0, 4, 1, 2, 3), (4, 3, 2), "
    "data_format='channels_first')",
    # --- associative scans (Keras' PyTorch backend computes in float32)
    "scan_sum": "ops.associative_scan(lambda a, b: a + b, S)",
    "scan_sum_axis1_reverse": "ops.associative_scan(lambda a, b: a + b, S, reverse=True, axis=1)",
    "scan_prod_even": "ops.associative_scan(lambda a, b: a * b, P[:6], axis=0)",
    "scan_max": "ops.associative_scan(ops.maximum, S, axis=-1)",
    # the affine maps x -> m x + c composed in order: a linear recurrence h_k = m_k h + c_k
    "scan_affine_tuple": "ops.associative_scan(lambda a, b: (a[0] * b[0], b[0] * a[1] + b[1]), "
    "(P, S))",
    "scan_dict_reverse": "ops.associative_scan(lambda a, b: {'s': a['s'] + b['s'], "
    "'m': ops.maximum(a['m'], b['m'])}, {'s': S, 'm': P}, reverse=True)",
    "scan_int": "ops.associative_scan(lambda a, b: a + b, I, axis=1)",
    # --- get_item
    "get_item": "ops.get_item(A, (slice(None), 1))",
    "get_item_key": "ops.numpy.get_item(A, key=(1, slice(2, None, 2)))",
    # --- image: perspective
    "perspective": "ops.image.perspective_transform(IMG, SP, EP)",
    "perspective_batch_nearest": "ops.image.perspective_transform(IMG, SPB, EPB, "
    "interpolation='nearest', fill_value=0.5)",
    "perspective_single_first": "ops.image.perspective_transform(IMG[0].transpose(2, 0, 1), SP, "
    "EP, data_format='channels_first')",
    "perspective_identity": "ops.image.perspective_transform(IMG, SP, SP)",
    # --- image: scale_and_translate
    **{
        f"scale_translate_{method}{'' if aa else '_no_aa'}": (
            f"ops.image.scale_and_translate(IMG, (2, 5, 17, 3), SCALE, SHIFT, (1, 2), "
            f"'{method}', antialias={aa})"
        )
        for method in ("linear", "cubic", "lanczos3", "lanczos5")
        for aa in (True, False)
    },
    "scale_translate_bilinear_2d": "ops.image.scale_and_translate(IMG[0, :, :, 0], (5, 4), "
    "SCALE, SHIFT, (0, 1), 'bilinear')",
    "scale_translate_one_axis": "ops.image.scale_and_translate(IMG, (2, 6, 10, 3), SCALE[:1], "
    "SHIFT[:1], (1,), 'bicubic')",
    "scale_translate_uint8": "ops.image.scale_and_translate(U8, (1, 9, 5, 1), SCALE, SHIFT, "
    "(1, 2), 'cubic')",
    "scale_translate_float64": "ops.image.scale_and_translate(IMG.astype('float64'), "
    "(2, 4, 6, 3), SCALE.astype('float64'), SHIFT.astype('float64'), (1, 2), 'linear')",
    # --- image: Sobel and SSIM
    "sobel": "ops.image.sobel_edges(IMG)",
    "sobel_first": "ops.image.sobel_edges(IMG.transpose(0, 3, 1, 2), data_format='channels_first')",
    "ssim": "ops.image.ssim(IMG, IMG2, filter_size=5)",
    "ssim_single_options": "ops.image.ssim(IMG[0] * 255, IMG2[0] * 255, max_val=255.0, "
    "filter_size=7, filter_sigma=2.0, k1=0.02, k2=0.05)",
    "ssim_first": "ops.image.ssim(IMG.transpose(0, 3, 1, 2), IMG2.transpose(0, 3, 1, 2), "
    "filter_size=3, data_format='channels_first')",
    "ssim_same": "ops.image.ssim(IMG, IMG, filter_size=9)",
    # --- the namespaces
    "linalg_solve": "ops.linalg.solve(M, A[:3, :2])",
    "numpy_add": "ops.numpy.add(A, B)",
    "nn_relu": "ops.nn.relu(A)",
}

# Where Keras' PyTorch backend gives another dtype than dendrite, on purpose: its
# associative_scan interleaves through torch.zeros, which is float32 whatever the input;
# dendrite keeps the input's dtype.
DTYPES_DIFFER = {"scan_int"}

# elastic_transform draws its noise at random (Keras' PyTorch backend ignores the seed off
# the "meta" device): both sides are given the same two normal fields.
ELASTIC_CALLS = {
    "elastic_default": {},
    "elastic_nearest_wrap": {
        "interpolation": "nearest",
        "fill_mode": "wrap",
        "alpha": 5.0,
        "sigma": 1.0,
    },
    "elastic_constant": {"fill_mode": "constant", "fill_value": 0.3, "alpha": 3.0, "sigma": 2.0},
    "elastic_mirror": {"fill_mode": "mirror", "alpha": 8.0, "sigma": 0.7},
}

NEW_OPS = [
    "polar",
    "view_as_complex",
    "view_as_real",
    "view",
    "adaptive_average_pool",
    "adaptive_max_pool",
    "associative_scan",
    "get_item",
    "image.perspective_transform",
    "image.elastic_transform",
    "image.scale_and_translate",
    "image.sobel_edges",
    "image.ssim",
]


def _inputs() -> dict:
    rng = np.random.default_rng(21)
    m = rng.uniform(-1, 1, (3, 3)) + 3 * np.eye(3)
    corners = np.array([[0, 0], [0, 9], [10, 0], [10, 9]], "float32")
    img = rng.uniform(0, 1, (2, 9, 10, 3)).astype("float32")
    return {
        "A": rng.uniform(-1, 1, (4, 6)).astype("float32"),
        "B": rng.uniform(-1, 1, (4, 6)).astype("float32"),
        "P": rng.uniform(0.5, 1.5, (7, 3)).astype("float32"),
        "S": rng.uniform(-1, 1, (7, 3)).astype("float32"),
        "I": rng.integers(-5, 9, (3, 4)).astype("int32"),
        "M": m.astype("float32"),
        "PAIRS": rng.uniform(-2, 2, (3, 4, 2)).astype("float32"),
        "Z": (rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))).astype("complex64"),
        "X1": rng.standard_normal((2, 9, 3)).astype("float32"),
        "X2": rng.standard_normal((2, 7, 9, 3)).astype("float32"),
        "X3": rng.standard_normal((2, 5, 6, 7, 2)).astype("float32"),
        "IMG": img,
        "IMG2": np.clip(img * 0.8 + rng.uniform(0, 0.3, img.shape), 0, 1).astype("float32"),
        "U8": rng.integers(0, 256, (1, 6, 7, 1)).astype("uint8"),
        "SP": corners,
        "EP": corners + np.array([[1, 2], [0.5, -1], [-1, -1], [1, 0.5]], "float32"),
        "SPB": np.stack([corners, corners + 0.3]),  # no sample halfway between pixels
        "EPB": np.stack([corners[[1, 3, 0, 2]], corners * 0.9 + 1]),
        "SCALE": np.array([0.6, 1.7], "float32"),
        "SHIFT": np.array([0.3, -1.2], "float32"),
        "DX": rng.standard_normal((2, 9, 10)).astype("float32"),
        "DY": rng.standard_normal((2, 9, 10)).astype("float32"),
    }


_KERAS_SIDE = """
import inspect, json, sys
import numpy as np
import torch
import keras
from keras import ops
root = sys.argv[1]
inputs = dict(np.load(root + "/inputs.npz"))
calls = json.load(open(root + "/calls.json"))
out, errors = {}, {}
for name, code in calls["calls"].items():
    try:
        result = eval(code, {"ops": ops, "np": np}, inputs)
    except Exception as error:  # reported by the test of that call
        errors[name] = f"{type(error).__name__}: {error}"
        continue
    items = keras.tree.flatten(result)
    for i, item in enumerate(items):
        out[f"{name}|{i}"] = ops.convert_to_numpy(item)

queue = []
torch.normal = lambda *args, **kwargs: torch.from_numpy(queue.pop(0)).to(kwargs["dtype"])
for name, kwargs in calls["elastic"].items():
    for first in (False, True):
        queue[:] = [inputs["DX"], inputs["DY"]]
        images = inputs["IMG"].transpose(0, 3, 1, 2) if first else inputs["IMG"]
        extra = {"data_format": "channels_first"} if first else {}
        result = ops.image.elastic_transform(images, **kwargs, **extra)
        out[f"{name}{'_first' if first else ''}|0"] = ops.convert_to_numpy(result)

signatures = {}
for name in calls["signatures"]:
    fn = ops
    for part in name.split("."):
        fn = getattr(fn, part)
    signatures[name] = [
        [p.name, None if p.default is p.empty else repr(p.default)]
        for p in inspect.signature(fn).parameters.values()
    ]
families = {
    family: [n for n in dir(getattr(ops, family)) if not n.startswith("_")]
    for family in ("nn", "linalg", "numpy", "image")
}
np.savez(root + "/keras.npz", **out)
json.dump({"errors": errors, "signatures": signatures, "families": families},
          open(root + "/facts.json", "w"))
"""


@pytest.fixture(scope="module")
def keras_side(tmp_path_factory):
    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None:
        pytest.skip("real Keras 3 with the torch backend is not installed")
    root = tmp_path_factory.mktemp("keras_ops_remaining")
    np.savez(root / "inputs.npz", **_inputs())
    calls = {"calls": KERAS_CALLS, "elastic": ELASTIC_CALLS, "signatures": NEW_OPS}
    (root / "calls.json").write_text(json.dumps(calls))
    run_keras_side(_KERAS_SIDE, root, backend="torch")
    results = dict(np.load(root / "keras.npz"))
    return results, json.loads((root / "facts.json").read_text())


def _flatten(value) -> list:
    return keras.tree.flatten(value)


def _compare(name: str, items: list, theirs: list) -> None:
    assert len(items) == len(theirs), (name, len(items), len(theirs))
    for got, expected in zip(items, theirs):
        got = np.asarray(got.data if isinstance(got, Tensor) else got)
        assert got.shape == expected.shape, (name, got.shape, expected.shape)
        if name not in DTYPES_DIFFER:
            assert got.dtype == expected.dtype, (name, got.dtype, expected.dtype)
        if expected.dtype.kind in "fc":
            np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=name)


def _theirs(results: dict, name: str) -> list:
    keys = sorted((k for k in results if k.split("|")[0] == name), key=lambda k: int(k[-1]))
    return [results[k] for k in keys]


@pytest.mark.parametrize("name", sorted(KERAS_CALLS))
def test_same_results_as_keras(keras_side, name):
    results, facts = keras_side
    assert name not in facts["errors"], f"Keras raised on {KERAS_CALLS[name]}: {facts['errors']}"
    with np.errstate(all="ignore"):
        ours = eval(KERAS_CALLS[name], {"ops": ops, "np": np}, _inputs())
    _compare(name, _flatten(ours), _theirs(results, name))


@pytest.fixture
def keras_noise(monkeypatch):
    """dendrite's elastic_transform given the noise fields the Keras side was given."""
    inputs = _inputs()
    monkeypatch.setattr(
        "dendrite.ops.image._elastic_noise",
        lambda shape, dtype, seed: (inputs["DX"].astype(dtype), inputs["DY"].astype(dtype)),
    )
    return inputs


@pytest.mark.parametrize("first", [False, True], ids=["channels_last", "channels_first"])
@pytest.mark.parametrize("name", sorted(ELASTIC_CALLS))
def test_elastic_transform_same_as_keras_on_the_same_noise(keras_side, keras_noise, name, first):
    results, _ = keras_side
    images = keras_noise["IMG"].transpose(0, 3, 1, 2) if first else keras_noise["IMG"]
    extra = {"data_format": "channels_first"} if first else {}
    ours = ops.image.elastic_transform(images, **ELASTIC_CALLS[name], **extra)
    key = f"{name}{'_first' if first else ''}"
    _compare(key, [ours], _theirs(results, key))


@pytest.mark.parametrize("name", NEW_OPS)
def test_same_signature_as_keras(keras_side, name):
    _, facts = keras_side
    fn = ops
    for part in name.split("."):
        fn = getattr(fn, part)
    ours = [
        [p.name, None if p.default is p.empty else repr(p.default)]
        for p in inspect.signature(fn).parameters.values()
    ]
    assert ours == facts["signatures"][name]


@pytest.mark.parametrize("family", ["nn", "linalg", "numpy", "image"])
def test_every_keras_name_of_a_family_is_in_its_namespace(keras_side, family):
    _, facts = keras_side
    theirs = facts["families"][family]
    lacking = {"jvp"}  # forward-mode differentiation: not offered by dendrite
    module = getattr(ops, family)
    for name in theirs:
        if name in lacking:
            assert not hasattr(module, name)
            continue
        assert hasattr(module, name), f"dendrite.ops.{family}.{name}"
        if family != "image":
            assert getattr(module, name) is getattr(ops, name), name
    if family != "image":
        assert sorted(namespaces.FAMILIES[family]) == sorted(set(theirs) - lacking)


# --- without Keras: namespaces ----------------------------------------------------------------
def test_namespaces_keep_the_internal_modules():
    from dendrite.ops import linalg, nn
    from dendrite.ops.linalg import matmul
    from dendrite.ops.nn import sparse_softmax_cross_entropy

    # the modules are still the ones holding the primitives, their own helpers included
    assert nn.__name__ == "dendrite.ops.nn" and linalg.__name__ == "dendrite.ops.linalg"
    assert callable(nn.clip_probabilities) and callable(sparse_softmax_cross_entropy)
    assert callable(matmul)
    # and now hold Keras' public names, the very public ops
    assert nn.relu is ops.relu and nn.softmax is ops.softmax and nn.polar is ops.polar
    assert linalg.solve is ops.solve and linalg.norm is ops.norm
    for family, names in namespaces.FAMILIES.items():
        module = getattr(ops, family)
        assert all(getattr(module, name) is getattr(ops, name) for name in names), family
    # an own function of the same name is that public op underneath
    assert ops.nn.binary_crossentropy.__wrapped__.__module__ == "dendrite.ops.nn"


def test_numpy_namespace_imports():
    import dendrite.ops.numpy as np_ops
    from dendrite.ops.numpy import add, get_item, view

    assert np_ops is ops.numpy and add is ops.add and view is ops.view
    assert get_item is ops.get_item
    assert keras.ops.numpy.matmul is ops.matmul
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(ops.numpy.get_item(x, (1, slice(None))).data, x[1])


def test_namespace_install_refuses_to_shadow_another_function():
    import types

    package = types.ModuleType("fake_ops")
    package.relu = lambda x: x
    module = types.ModuleType("fake_ops.nn")
    module.relu = lambda x: -x
    saved = namespaces.FAMILIES
    try:
        namespaces.FAMILIES = {"nn": ("relu",)}
        with pytest.raises(ImportError, match="relu"):
            namespaces.install(package, {"nn": module})
    finally:
        namespaces.FAMILIES = saved


# --- polar and the complex views --------------------------------------------------------------
def test_polar_known_values_and_dtypes():
    z = ops.polar(np.array([2.0, 1.0]), np.array([np.pi / 2, np.pi]))
    assert z.dtype == np.complex128
    np.testing.assert_allclose(z.data, [2j, -1], atol=1e-15)
    assert ops.polar(np.float32([1.0]), np.float32([0.0])).dtype == np.complex64
    assert ops.polar([1, 2], [0, 1]).dtype == np.complex64
    assert ops.polar(np.ones((2, 1), "float32"), np.zeros((3,), "float32")).shape == (2, 3)
    with pytest.raises(ValueError, match="polar"):
        ops.polar(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="polar"):
        ops.polar(np.ones(2) + 1j, np.ones(2))


def test_complex_views_round_trip_and_errors():
    pairs = np.random.default_rng(0).standard_normal((2, 3, 2))
    z = ops.view_as_complex(pairs)
    assert z.dtype == np.complex64 and z.shape == (2, 3)  # complex64, as Keras casts it
    np.testing.assert_allclose(z.data, pairs[..., 0] + 1j * pairs[..., 1], rtol=1e-6)
    back = ops.view_as_real(z)
    assert back.dtype == np.float32 and back.shape == (2, 3, 2)
    np.testing.assert_allclose(back.data, pairs, rtol=1e-6)
    wide = ops.view_as_real(np.array([1 + 2j, -3j]))
    assert wide.dtype == np.float64
    np.testing.assert_array_equal(wide.data, [[1, 2], [0, -3]])
    with pytest.raises(ValueError, match=r"view_as_complex.*\(3, 3\)"):
        ops.view_as_complex(np.ones((3, 3)))
    with pytest.raises(ValueError, match="view_as_complex"):
        ops.view_as_complex(np.ones(()))
    with pytest.raises(ValueError, match="real"):
        ops.view_as_complex(np.ones((3, 2), "complex64"))


def test_view_as_real_of_a_real_tensor_has_zero_imaginary_parts_and_a_gradient():
    x = np.random.default_rng(1).standard_normal((2, 3))
    out = ops.view_as_real(x)
    np.testing.assert_array_equal(out.data[..., 0], x)
    np.testing.assert_array_equal(out.data[..., 1], 0)
    gradcheck(ops.view_as_real, x, mode="elementwise")


# --- view ---------------------------------------------------------------------------------------
def test_view_known_bits_and_shapes():
    one = ops.view(np.float32([1.0, -2.0]), "int32")
    np.testing.assert_array_equal(one.data, [0x3F800000, np.int32(-(2**31) + 0x40000000)])
    assert ops.view(np.zeros((2, 3), "int32"), "int16").shape == (2, 6)
    assert ops.view(np.zeros((2, 4), "int16"), "int64").shape == (2, 1)
    assert ops.view(np.zeros((2, 4), "float64"), "uint8").shape == (2, 32)
    assert ops.view(np.array([1, 0], "uint8"), "bool").dtype == np.bool_
    transposed = np.arange(6, dtype="int32").reshape(2, 3).T  # not contiguous
    np.testing.assert_array_equal(
        ops.view(transposed, "int16").data, np.ascontiguousarray(transposed).view("int16")
    )


def test_view_to_the_same_dtype_is_a_differentiable_identity():
    x = np.random.default_rng(2).standard_normal((3, 2))
    assert ops.view(x).dtype == np.float64  # NumPy's dtype=None: x's own dtype
    np.testing.assert_array_equal(ops.view(x, "float64").data, x)
    gradcheck(lambda t: ops.view(t) * 2.0, x, mode="elementwise")
    gradcheck(lambda t: ops.view(t, "float64"), x)


def test_view_errors():
    with pytest.raises(ValueError, match="scalar"):
        ops.view(np.float32(1.0), "int16")
    with pytest.raises(ValueError, match=r"view.*\(2, 3\).*divisible"):
        ops.view(np.zeros((2, 3), "int16"), "int32")
    with pytest.raises(TypeError, match="view"):
        ops.view(np.zeros(2), "no_such_dtype")


# --- adaptive pooling ----------------------------------------------------------------------------
def _reference_pool(x: np.ndarray, sizes: tuple, first_axis: int, reduce: str) -> np.ndarray:
    for offset, size in enumerate(sizes):
        axis = first_axis + offset
        length = x.shape[axis]
        pieces = [
            np.take(x, range(i * length // size, -(-(i + 1) * length // size)), axis)
            for i in range(size)
        ]
        reducer = np.mean if reduce == "average" else np.max
        x = np.stack([reducer(p, axis=axis) for p in pieces], axis=axis)
    return x


@pytest.mark.parametrize("reduce", ["average", "max"])
@pytest.mark.parametrize(
    "shape, sizes",
    [((2, 7, 3), (3,)), ((1, 5, 8, 2), (3, 8)), ((2, 4, 5, 6, 1), (2, 5, 3)), ((1, 6, 1), (6,))],
)
def test_adaptive_pools_match_their_windows_in_float64(reduce, shape, sizes):
    x = np.random.default_rng(3).standard_normal(shape)
    op = ops.adaptive_average_pool if reduce == "average" else ops.adaptive_max_pool
    out = op(x, sizes)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.data, _reference_pool(x, sizes, 1, reduce), rtol=1e-14)
    first = op(np.moveaxis(x, -1, 1), sizes, data_format="channels_first")
    np.testing.assert_allclose(np.moveaxis(first.data, 1, -1), out.data, rtol=1e-14)
    gradcheck(lambda t: op(t, sizes), x, mode="elementwise")


def test_adaptive_pools_dtypes_and_the_layers_using_them():
    ints = np.arange(2 * 6 * 1).reshape(2, 6, 1)
    mean = ops.adaptive_average_pool(ints, 2)
    assert mean.dtype == np.float32
    np.testing.assert_array_equal(mean.data[0, :, 0], [1, 4])
    assert ops.adaptive_max_pool(ints, 4).dtype == ints.dtype
    x = np.random.default_rng(4).standard_normal((2, 7, 5, 3)).astype("float32")
    layer = keras.layers.AdaptiveMaxPooling2D((3, 2))
    np.testing.assert_array_equal(layer(x).data, ops.adaptive_max_pool(x, (3, 2)).data)
    layer = keras.layers.AdaptiveAveragePooling1D(4, data_format="channels_first")
    np.testing.assert_array_equal(
        layer(x[:, 0]).data, ops.adaptive_average_pool(x[:, 0], 4, "channels_first").data
    )


def test_adaptive_pool_errors():
    with pytest.raises(ValueError, match=r"adaptive_average_pool.*ndim=3, 4 or 5.*\(2, 3\)"):
        ops.adaptive_average_pool(np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match="adaptive_max_pool.*output_size"):
        ops.adaptive_max_pool(np.ones((1, 4, 4, 1)), (2, 2, 2))
    with pytest.raises(ValueError, match="positive"):
        ops.adaptive_max_pool(np.ones((1, 4, 4, 1)), (2, 0))
    with pytest.raises(ValueError, match="empty"):
        ops.adaptive_average_pool(np.ones((1, 0, 4, 1)), 2)
    with pytest.raises(ValueError, match="data_format"):
        ops.adaptive_average_pool(np.ones((1, 4, 4, 1)), 2, data_format="nhwc")


# --- associative_scan ----------------------------------------------------------------------------
@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5, 8, 13])
def test_associative_scan_is_the_prefix_combination(length):
    x = np.random.default_rng(length).uniform(0.5, 1.5, (length, 3))
    sums = ops.associative_scan(lambda a, b: a + b, x)
    np.testing.assert_allclose(sums.data, np.cumsum(x, 0), rtol=1e-13)
    prods = ops.associative_scan(lambda a, b: a * b, x, reverse=True)
    np.testing.assert_allclose(prods.data, np.cumprod(x[::-1], 0)[::-1], rtol=1e-13)
    assert sums.dtype == np.float64


def test_associative_scan_keeps_the_order_of_a_non_commutative_operation():
    mats = np.random.default_rng(5).standard_normal((2, 7, 2, 2))
    out = ops.associative_scan(lambda a, b: ops.matmul(a, b), mats, axis=1)
    expected = np.empty_like(mats)
    expected[:, 0] = mats[:, 0]
    for k in range(1, 7):
        expected[:, k] = expected[:, k - 1] @ mats[:, k]
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    backwards = ops.associative_scan(lambda a, b: ops.matmul(a, b), mats, reverse=True, axis=-3)
    # reversed: y_k = x_{n-1} ... combined with f(later, earlier) = later @ earlier
    expected = np.empty_like(mats)
    expected[:, 6] = mats[:, 6]
    for k in range(5, -1, -1):
        expected[:, k] = expected[:, k + 1] @ mats[:, k]
    np.testing.assert_allclose(backwards.data, expected, rtol=1e-12, atol=1e-12)


def test_associative_scan_structures_and_gradients():
    rng = np.random.default_rng(6)
    m, c = rng.uniform(0.5, 1.5, (6, 2)), rng.standard_normal((6, 2))

    def compose(a, b):
        return {"m": a["m"] * b["m"], "c": b["m"] * a["c"] + b["c"]}

    out = ops.associative_scan(compose, {"m": m, "c": c})
    assert set(out) == {"m", "c"}
    h, expected = np.zeros(2), []
    for k in range(6):
        h = m[k] * h + c[k]
        expected.append(h)
    np.testing.assert_allclose(out["c"].data, expected, rtol=1e-13)
    gradcheck(
        lambda a, b: ops.associative_scan(compose, {"m": a, "c": b})["c"],
        m,
        c,
        mode="elementwise",
    )
    pair = ops.associative_scan(lambda a, b: [a[0] + b[0], a[1] + b[1]], [m, c], axis=1)
    assert isinstance(pair, list) and len(pair) == 2


def test_associative_scan_errors():
    with pytest.raises(TypeError, match="callable"):
        ops.associative_scan(3, np.ones(3))
    with pytest.raises(ValueError, match=r"same length.*\(3,\).*\(4,\)"):
        ops.associative_scan(lambda a, b: a, [np.ones(3), np.ones(4)])
    with pytest.raises(ValueError, match="axis 2"):
        ops.associative_scan(lambda a, b: a + b, np.ones((3, 2)), axis=2)
    with pytest.raises(ValueError, match="structure"):
        ops.associative_scan(lambda a, b: a[0] + b[0], [np.ones(3), np.ones(3)])


# --- get_item -----------------------------------------------------------------------------------
def test_get_item_is_getitem_under_keras_name():
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(ops.get_item(x, key=(slice(1, None), 2)).data, x[1:, 2])
    np.testing.assert_array_equal(ops.get_item(x, np.array([2, 0])).data, x[[2, 0]])
    gradcheck(lambda t: ops.get_item(t, (slice(None), slice(1, 3))), x)


# --- perspective_transform ---------------------------------------------------------------------
CORNERS = np.array([[0, 0], [0, 5], [6, 0], [6, 5]], "float64")


def test_perspective_identity_and_shift():
    images = np.random.default_rng(7).uniform(0, 1, (2, 5, 6, 3))
    same = ops.image.perspective_transform(images, CORNERS, CORNERS)
    np.testing.assert_allclose(same.data, images, atol=1e-12)
    assert same.dtype == np.float64
    # end = start + (1, 2): output (x, y) reads input (x - 1, y - 2)
    shifted = ops.image.perspective_transform(images, CORNERS, CORNERS + [1, 2], "nearest")
    np.testing.assert_allclose(shifted.data[:, 2:, 1:], images[:, :-2, :-1], atol=1e-12)
    np.testing.assert_array_equal(shifted.data[:, :2], 0)
    one = ops.image.perspective_transform(images[0], CORNERS, CORNERS + [1, 2], "nearest")
    np.testing.assert_allclose(one.data, shifted.data[0])


def test_perspective_gradients_reach_images_and_points():
    rng = np.random.default_rng(8)
    images = rng.uniform(0, 1, (2, 4, 5, 2))
    end = CORNERS + rng.uniform(-0.6, 0.6, (4, 2))
    gradcheck(
        lambda x, s, e: ops.image.perspective_transform(x, s, e, fill_value=0.5),
        images,
        CORNERS,
        end,
    )


def test_perspective_errors():
    images = np.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match=r"start_points.*\(3, 2\)"):
        ops.image.perspective_transform(images, np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="same shape"):
        ops.image.perspective_transform(images, CORNERS, CORNERS[None].repeat(2, 0))
    with pytest.raises(ValueError, match="interpolation"):
        ops.image.perspective_transform(images, CORNERS, CORNERS, interpolation="bicubic")
    with pytest.raises(ValueError, match="rank"):
        ops.image.perspective_transform(np.zeros((4, 4)), CORNERS, CORNERS)
    with pytest.raises(ValueError, match="3 sets of points for a batch of 2"):
        ops.image.perspective_transform(
            np.zeros((2, 4, 4, 1)), CORNERS[None].repeat(3, 0), CORNERS[None].repeat(3, 0)
        )


# --- elastic_transform --------------------------------------------------------------------------
def test_elastic_transform_seeds_dtypes_and_alpha_zero():
    images = np.random.default_rng(9).uniform(0, 1, (2, 8, 7, 3))
    still = ops.image.elastic_transform(images, alpha=0.0, seed=1)
    np.testing.assert_allclose(still.data, images, atol=1e-12)
    a = ops.image.elastic_transform(images, alpha=4.0, sigma=1.5, seed=3)
    b = ops.image.elastic_transform(images, alpha=4.0, sigma=1.5, seed=3)
    c = ops.image.elastic_transform(images, alpha=4.0, sigma=1.5, seed=4)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.allclose(a.data, c.data) and a.dtype == np.float64
    generator = keras.random.SeedGenerator(5)
    d = ops.image.elastic_transform(images, 4.0, 1.5, seed=generator)
    e = ops.image.elastic_transform(images, 4.0, 1.5, seed=generator)
    assert not np.allclose(d.data, e.data)
    first = ops.image.elastic_transform(
        images.transpose(0, 3, 1, 2), 4.0, 1.5, seed=3, data_format="channels_first"
    )
    np.testing.assert_allclose(first.data, a.data.transpose(0, 3, 1, 2), atol=1e-12)
    ints = ops.image.elastic_transform((images * 255).astype("uint8"), 2.0, 1.0, seed=3)
    assert ints.dtype == np.uint8
    single = ops.image.elastic_transform(images[0].astype("float32"), seed=2)
    assert single.shape == (8, 7, 3) and single.dtype == np.float32


def test_elastic_transform_gradient_and_errors():
    images = np.random.default_rng(10).uniform(0, 1, (1, 5, 6, 2))
    gradcheck(lambda x: ops.image.elastic_transform(x, 3.0, 1.0, seed=7), images)
    with pytest.raises(ValueError, match="fill_mode"):
        ops.image.elastic_transform(images, fill_mode="edge")
    with pytest.raises(ValueError, match="interpolation"):
        ops.image.elastic_transform(images, interpolation="bicubic")
    with pytest.raises(ValueError, match="sigma"):
        ops.image.elastic_transform(images, sigma=0.0)
    with pytest.raises(ValueError, match="rank"):
        ops.image.elastic_transform(images[0, :, :, 0])


# --- scale_and_translate ------------------------------------------------------------------------
def test_scale_and_translate_known_values():
    images = np.arange(9, dtype="float32").reshape(3, 3)
    scale = np.array([2.0, 2.0], "float32")
    out = ops.image.scale_and_translate(images, (5, 5), scale, -(scale / 2 - 0.5), (0, 1), "linear")
    expected = np.arange(5) * 0.5 + 1.5 * np.arange(5)[:, None]  # Keras' docstring example
    np.testing.assert_allclose(out.data, expected, atol=1e-6)
    assert out.dtype == np.float32
    x = np.random.default_rng(11).standard_normal((2, 4, 5, 3))
    for method in ("linear", "cubic", "lanczos3", "lanczos5"):
        one, zero = np.ones(2), np.zeros(2)  # float64 weights
        same = ops.image.scale_and_translate(x, x.shape, one, zero, (1, 2), method)
        np.testing.assert_allclose(same.data, x, atol=1e-12, err_msg=method)
        assert same.dtype == np.float64
    # a whole-pixel translation is a shift with zeros entering
    moved = ops.image.scale_and_translate(x, x.shape, [1.0], [2.0], (2,), "linear")
    np.testing.assert_allclose(moved.data[:, :, 2:], x[:, :, :-2], atol=1e-12)
    np.testing.assert_array_equal(moved.data[:, :, :2], 0)
    assert ops.image.scale_and_translate(x, (9, 9, 9, 9), [1.0], [0.0], (), "linear").shape == (
        x.shape
    )


def test_scale_and_translate_integers_and_gradients():
    ints = np.random.default_rng(12).integers(10, 200, (1, 5, 5, 1)).astype("uint8")
    out = ops.image.scale_and_translate(ints, (1, 8, 3, 1), [1.6, 0.6], [0.0, 0.2], (1, 2), "cubic")
    assert out.dtype == np.uint8
    assert out.data.min() >= ints.min() and out.data.max() <= ints.max()
    rng = np.random.default_rng(13)
    images = rng.uniform(0, 1, (1, 4, 5, 2))
    for method in ("linear", "cubic", "lanczos3"):
        gradcheck(
            lambda x, s, t, method=method: ops.image.scale_and_translate(
                x, (1, 6, 3, 2), s, t, (1, 2), method
            ),
            images,
            np.array([1.4, 0.65]),
            np.array([0.2, -0.35]),
            name=method,
        )


def test_scale_and_translate_errors():
    x = np.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match="method"):
        ops.image.scale_and_translate(x, x.shape, [1.0, 1.0], [0.0, 0.0], (1, 2), "nearest")
    with pytest.raises(ValueError, match="scale"):
        ops.image.scale_and_translate(x, x.shape, [1.0], [0.0, 0.0], (1, 2), "linear")
    with pytest.raises(ValueError, match="output_shape"):
        ops.image.scale_and_translate(x, (4, 4), [1.0, 1.0], [0.0, 0.0], (1, 2), "linear")
    with pytest.raises(ValueError, match="spatial dim 4"):
        ops.image.scale_and_translate(x, x.shape, [1.0], [0.0], (4,), "linear")


# --- sobel_edges and ssim -----------------------------------------------------------------------
def test_sobel_edges_known_values_and_gradient():
    step = np.zeros((1, 4, 5, 1))
    step[..., 3:, :] = 1.0  # a vertical edge between columns 2 and 3
    edges = ops.image.sobel_edges(step)
    assert edges.shape == (1, 4, 5, 1, 2) and edges.dtype == np.float64
    dy, dx = edges.data[0, :, :, 0, 0], edges.data[0, :, :, 0, 1]
    np.testing.assert_array_equal(dx[1:-1], [[0, 0, 4, 4, -4]] * 2)  # zero padding at the edge
    np.testing.assert_array_equal(dx[0], [0, 0, 3, 3, -3])
    np.testing.assert_array_equal(dy[1:-1], 0)
    assert ops.image.sobel_edges(step.astype("float32")).dtype == np.float32
    images = np.random.default_rng(14).standard_normal((1, 3, 4, 2))
    gradcheck(ops.image.sobel_edges, images, mode="elementwise")
    with pytest.raises(ValueError, match="sobel_edges.*rank 4"):
        ops.image.sobel_edges(images[0])


def test_ssim_known_values_dtypes_and_gradients():
    rng = np.random.default_rng(15)
    images = rng.uniform(0, 1, (2, 8, 9, 3))
    same = ops.image.ssim(images, images, filter_size=5)
    assert same.shape == (2,) and same.dtype == np.float64
    np.testing.assert_allclose(same.data, 1.0, rtol=1e-12)
    noisy = np.clip(images + rng.normal(0, 0.2, images.shape), 0, 1)
    lower = ops.image.ssim(images, noisy, filter_size=5)
    assert np.all(lower.data < 0.95)
    single = ops.image.ssim(images[0].astype("float32"), noisy[0].astype("float32"), filter_size=3)
    assert single.shape == () and single.dtype == np.float32
    gradcheck(
        lambda a, b: ops.image.ssim(a, b, filter_size=3), images[:1, :5, :5], noisy[:1, :5, :5]
    )
    with pytest.raises(ValueError, match="same shape"):
        ops.image.ssim(images, images[:1])
    with pytest.raises(ValueError, match="filter_size"):
        ops.image.ssim(images, images)  # 11 > 8
    with pytest.raises(ValueError, match="image2 rank"):
        ops.image.ssim(images, images[0, 0])


# --- symbolic tensors ---------------------------------------------------------------------------
RNG = np.random.default_rng(16)
SQUARE = np.array([[0, 0], [0, 6], [6, 0], [6, 6]], "float32")
SYMBOLIC = [
    ("adaptive_average_pool", (6, 7, 2), lambda x: ops.adaptive_average_pool(x, (2, 3))),
    ("adaptive_max_pool", (6, 2), lambda x: ops.nn.adaptive_max_pool(x, 4)),
    ("get_item", (4, 3), lambda x: ops.get_item(x, (slice(None), 1))),
    ("view", (4,), lambda x: ops.numpy.view(x, "int32")),
    ("view_as_real", (4,), ops.view_as_real),
    ("image.sobel_edges", (5, 5, 2), ops.image.sobel_edges),
    ("image.ssim", (8, 8, 1), lambda x: ops.image.ssim(x, x * 0.5, filter_size=3)),
    (
        "image.perspective_transform",
        (6, 6, 1),
        lambda x: ops.image.perspective_transform(x, SQUARE, SQUARE * 0.9 + 0.4),
    ),
    (
        "image.scale_and_translate",
        (4, 4, 1),
        lambda x: ops.image.scale_and_translate(
            x, (1, 6, 6, 1), np.float32([1.5, 1.5]), np.float32([0, 0]), (1, 2), "cubic"
        ),
    ),
    ("image.elastic_transform", (6, 6, 1), lambda x: ops.image.elastic_transform(x, 1.0, seed=3)),
]


@pytest.mark.parametrize("name, shape, fn", SYMBOLIC, ids=[s[0] for s in SYMBOLIC])
def test_recorded_ops_predict_save_and_load(tmp_path, name, shape, fn):
    inputs = keras.Input(shape)
    model = keras.Model(inputs, fn(inputs))
    assert any(getattr(layer, "op", None) == name for layer in model.layers), name
    x = RNG.uniform(0.1, 1.0, (3, *shape)).astype("float32")
    expected = fn(x).data
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "m.dendrite")
    loaded = keras.models.load_model(tmp_path / "m.dendrite")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_associative_scan_on_a_symbolic_tensor_records_its_slices_and_joins(tmp_path):
    inputs = keras.Input((5, 2))
    model = keras.Model(inputs, ops.associative_scan(lambda a, b: a + b, inputs, axis=1))
    x = RNG.uniform(0, 1, (3, 5, 2)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.cumsum(x, 1), rtol=1e-6)
    model.save(tmp_path / "m.dendrite")
    loaded = keras.models.load_model(tmp_path / "m.dendrite")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), np.cumsum(x, 1), rtol=1e-6)


# --- extract_patches_3d ------------------------------------------------------------------------
def _patches_3d_by_hand(x, size, strides):
    """out[n, i, j, k, :] = x[n, i s0 : i s0 + d, j s1 : ..., k s2 : ..., :] flattened."""
    n, depth, height, width, _ = x.shape
    starts = [
        range(0, extent - k + 1, s) for extent, k, s in zip((depth, height, width), size, strides)
    ]
    return np.stack(
        [
            np.stack(
                [
                    np.stack(
                        [
                            x[:, i : i + size[0], j : j + size[1], k : k + size[2]].reshape(n, -1)
                            for k in starts[2]
                        ],
                        1,
                    )
                    for j in starts[1]
                ],
                1,
            )
            for i in starts[0]
        ],
        1,
    )


@pytest.mark.parametrize("size, strides", [(2, None), ((2, 3, 1), (1, 2, 3)), ((3, 2, 2), 1)])
def test_extract_patches_3d_flattens_each_window(size, strides):
    x = RNG.standard_normal((2, 5, 6, 7, 3))
    window = (size,) * 3 if isinstance(size, int) else size
    step = window if strides is None else (strides,) * 3 if isinstance(strides, int) else strides
    got = ops.image.extract_patches_3d(x, size, strides=strides)
    np.testing.assert_allclose(got.data, _patches_3d_by_hand(x, window, step), atol=1e-12)
    single = ops.image.extract_patches_3d(x[0], size, strides=strides)
    np.testing.assert_allclose(single.data, got.data[0], atol=1e-12)
    first = ops.image.extract_patches_3d(
        np.moveaxis(x, -1, 1), size, strides=strides, data_format="channels_first"
    )
    assert first.shape == (2, got.shape[-1], *got.shape[1:4])


def test_extract_patches_3d_gradient_and_errors():
    x = Tensor(RNG.standard_normal((1, 4, 4, 3, 2)), requires_grad=True)
    gradcheck(lambda t: ops.image.extract_patches_3d(t, 2, strides=1, padding="same"), x)
    with pytest.raises(TypeError, match=r"extract_patches_3d: size must be an int or \(d, h, w\)"):
        ops.image.extract_patches_3d(x, (2, 2))
    with pytest.raises(ValueError, match="extract_patches_3d: expected rank 4.*got shape"):
        ops.image.extract_patches_3d(np.zeros((4, 4, 3)), 2)
