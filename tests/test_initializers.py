"""Initializers: Keras names, variance-scaling statistics, seeds."""

import numpy as np
import pytest

import dendrite as tf
from dendrite.layers import initializers


@pytest.mark.parametrize(
    "name, expected_std",
    [
        ("glorot_uniform", np.sqrt(2 / (400 + 300))),
        ("glorot_normal", np.sqrt(2 / (400 + 300))),
        ("he_uniform", np.sqrt(2 / 400)),
        ("he_normal", np.sqrt(2 / 400)),
        ("lecun_uniform", np.sqrt(1 / 400)),
        ("lecun_normal", np.sqrt(1 / 400)),
        ("random_normal", 0.05),
        ("random_uniform", 0.1 / np.sqrt(12)),
    ],
)
def test_variance_matches_keras_formula(name, expected_std):
    tf.utils.set_random_seed(0)
    values = initializers.get(name)((400, 300))
    assert values.dtype == np.float32
    assert abs(values.std() - expected_std) / expected_std < 0.03
    assert abs(values.mean()) < 0.01


def test_uniform_limits_and_truncation():
    values = initializers.get("glorot_uniform")((50, 70))
    assert np.abs(values).max() <= np.sqrt(6 / 120)
    truncated = initializers.TruncatedNormal(stddev=1.0)((10000,))
    assert np.abs(truncated).max() <= 2.0


def test_conv_kernel_fans_use_receptive_field():
    assert initializers.compute_fans((3, 3, 16, 32)) == (144.0, 288.0)


def test_constant_zeros_ones_and_orthogonal():
    assert np.all(initializers.get("zeros")((2, 2)) == 0)
    assert np.all(initializers.get("ones")((2,)) == 1)
    assert np.all(initializers.Constant(3.5)((2,)) == 3.5)
    q = initializers.Orthogonal()((6, 4))
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-5)
    # Wide as well as tall, and C-ordered either way (the kernels need C order).
    for shape in ((6, 4), (4, 6), (128, 512)):
        q = initializers.Orthogonal(seed=0)(shape)
        assert q.flags.c_contiguous and q.dtype == np.float32
        small = min(shape)
        gram = q @ q.T if shape[0] == small else q.T @ q
        np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)


def test_seeded_initializer_repeats_and_global_seed_repeats():
    a = initializers.GlorotUniform(seed=7)((3, 3))
    b = initializers.GlorotUniform(seed=7)((3, 3))
    np.testing.assert_array_equal(a, b)
    tf.utils.set_random_seed(5)
    c = initializers.get("he_normal")((4, 4))
    tf.utils.set_random_seed(5)
    np.testing.assert_array_equal(c, initializers.get("he_normal")((4, 4)))


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="glorot_uniform"):
        initializers.get("glorot_uniformm")


def test_config_round_trip():
    init = initializers.RandomNormal(mean=1.0, stddev=2.0, seed=3)
    again = initializers.get(initializers.serialize(init))
    assert isinstance(again, initializers.RandomNormal)
    assert (again.mean, again.stddev, again.seed) == (1.0, 2.0, 3)


def test_keras_snake_case_names_are_the_classes():
    """keras.initializers.he_normal(seed=1) and friends: Keras 3 exports each class under
    its snake_case name (and Orthogonal, Identity under longer ones); they serialize as
    the class."""
    from dendrite.layers import initializers as init

    pairs = {
        "zeros": init.Zeros,
        "ones": init.Ones,
        "constant": init.Constant,
        "random_normal": init.RandomNormal,
        "random_uniform": init.RandomUniform,
        "truncated_normal": init.TruncatedNormal,
        "variance_scaling": init.VarianceScaling,
        "glorot_uniform": init.GlorotUniform,
        "glorot_normal": init.GlorotNormal,
        "he_uniform": init.HeUniform,
        "he_normal": init.HeNormal,
        "lecun_uniform": init.LecunUniform,
        "lecun_normal": init.LecunNormal,
        "orthogonal": init.Orthogonal,
        "OrthogonalInitializer": init.Orthogonal,
        "identity": init.Identity,
        "IdentityInitializer": init.Identity,
    }
    for name, cls in pairs.items():
        assert getattr(init, name) is cls, name
    made = init.he_normal(seed=1)
    assert init.serialize(made)["class_name"] == "HeNormal"
    np.testing.assert_array_equal(made((4, 3)), init.HeNormal(seed=1)((4, 3)))
