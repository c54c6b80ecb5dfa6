"""dendrite.distribution in one process: sharding, gradient weighting, metric-state
reduction and the Keras-named API (the runs over mpiexec are in test_distribution_mpi)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import dendrite as keras
from dendrite import distribution as D
from dendrite.distribution import gradients, metric_reduction, sharding


# --- sharding -------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 32, 33])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_shards_cover_the_batch_in_order(n, size):
    bounds = [sharding.shard_bounds(n, r, size) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = sharding.shard_sizes(n, size)
    assert sum(sizes) == n and max(sizes) - min(sizes) <= 1


def test_shard_batch_slices_every_array_alike():
    x = {"a": np.arange(10).reshape(5, 2), "b": np.arange(5)}
    y, w = np.arange(5) * 10, np.ones(5)
    parts = [sharding.shard_batch((x, y, w), r, 3) for r in range(3)]
    assert [len(p[1]) for p in parts] == [2, 2, 1]
    assert np.concatenate([p[0]["a"] for p in parts]).tolist() == x["a"].tolist()
    assert parts[2][1].tolist() == [40]
    assert sharding.batch_length(parts[2]) == 1
    assert sharding.batch_length(sharding.shard_batch((np.zeros((1, 3)),), 1, 2)) == 0


def test_shard_index_of_slices_and_permutations():
    assert sharding.shard_index(slice(10, 15), 1, 2) == slice(13, 15)
    order = np.array([4, 2, 0, 1, 3])
    assert sharding.shard_index(order, 0, 2).tolist() == [4, 2, 0]


class _SumOf:
    """A fake communicator: allreduce adds the buffers other "ranks" gave (or captures)."""

    def __init__(self, others=(), size=2):
        self.others, self.size, self.rank, self.captured = list(others), size, 0, None

    def allreduce_sum(self, buffer):
        self.captured = buffer.copy()
        for other in self.others:
            buffer += other
        return buffer

    def allgather_object(self, value):
        return [value] * self.size


def _mlp():
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input(shape=(4,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(3)]
    )
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _grads(model, x, y):
    tape_grads = []
    with keras.GradientTape() as tape:
        loss = model.compute_loss(x, y, model(x, training=True))
    tape_grads = tape.gradient(loss, model.trainable_weights)
    return [np.asarray(getattr(g, "data", g)) for g in tape_grads]


def test_weighted_average_of_uneven_shards_is_the_global_gradient():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 4)).astype("float32")
    y = rng.integers(0, 3, 7)
    model = _mlp()
    variables = model.trainable_weights
    whole = _grads(model, x, y)
    (a0, a1), (b0, b1) = sharding.shard_bounds(7, 0, 2), sharding.shard_bounds(7, 1, 2)
    g1 = _grads(model, x[b0:b1], y[b0:b1])
    capture = _SumOf()
    gradients.GradientAverager(capture, variables).average(g1, variables, b1 - b0)
    g0 = _grads(model, x[a0:a1], y[a0:a1])
    averaged = gradients.GradientAverager(_SumOf([capture.captured]), variables).average(
        g0, variables, a1 - a0
    )
    for got, want in zip(averaged, whole):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_empty_shard_contributes_nothing_and_missing_gradients_stay_none():
    v = keras.Variable(np.zeros(3, "float32"))
    w = keras.Variable(np.zeros(2, "float32"))
    capture = _SumOf()
    gradients.GradientAverager(capture, [v, w]).average([None, None], [v, w], 0)
    assert not capture.captured.any()
    out = gradients.GradientAverager(_SumOf([capture.captured]), [v, w]).average(
        [np.ones(3, "float32"), None], [v, w], 4
    )
    assert out[0].tolist() == [1, 1, 1] and out[1] is None


def test_one_flat_buffer_per_step():
    v = keras.Variable(np.zeros((2, 3), "float32"))
    w = keras.Variable(np.zeros(3, "float32"))
    comm = _SumOf()
    calls = []
    comm.allreduce_sum = lambda buffer: calls.append(buffer.size) or buffer
    gradients.GradientAverager(comm, [v, w]).average([np.ones((2, 3)), np.ones(3)], [v, w], 1)
    assert calls == [6 + 3 + 2 + 1]  # gradients, one flag per variable, the weight


# --- metric state ---------------------------------------------------------------------------
def test_metric_state_is_found_and_summed_like_one_process():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 40).astype("float32")
    p = rng.random(40).astype("float32")
    for make in (
        lambda: keras.metrics.AUC(),
        lambda: keras.metrics.Precision(),
        lambda: keras.metrics.Recall(),
        lambda: keras.metrics.BinaryAccuracy(),
        lambda: keras.metrics.Mean(),
    ):
        one = make()
        ranks = [make(), make()]
        if type(one) is keras.metrics.Mean:
            one.update_state(p)
            ranks[0].update_state(p[:25])
            ranks[1].update_state(p[25:])
        else:
            one.update_state(y, p)
            ranks[0].update_state(y[:25], p[:25])
            ranks[1].update_state(y[25:], p[25:])
        names = metric_reduction.state_names(ranks[1])
        assert names, type(one).__name__
        other = np.concatenate(
            [np.asarray(getattr(ranks[1], n), np.float64).reshape(-1) for n in names]
        )
        metric_reduction.reduce_metric_states(_SumOf([other]), [ranks[0]])
        assert ranks[0].result() == pytest.approx(float(one.result()), abs=1e-12)


def test_compiled_metrics_are_opened_up():
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1, "sigmoid")])
    model.compile(loss="binary_crossentropy", metrics=["accuracy", keras.metrics.AUC()])
    model.evaluate(np.zeros((4, 2)), np.ones(4), verbose=0)
    leaves = metric_reduction.leaf_metrics(model.metrics)
    assert {type(m).__name__ for m in leaves} >= {"Mean", "AUC"}


# --- the Keras-named API --------------------------------------------------------------------
def test_no_distribution_by_default_and_writers():
    assert D.distribution() is None
    assert D.is_writer()
    assert D.list_devices("gpu") == []
    assert D.average_gradients([]) == []


def test_set_distribution_refuses_other_objects():
    with pytest.raises(ValueError, match="Distribution instance"):
        D.set_distribution("data")


def test_scope_sets_and_restores():
    class Fake(D.Distribution):
        process_id = 1

    fake = Fake()
    with fake.scope():
        assert D.distribution() is fake
        assert not D.is_writer()
    assert D.distribution() is None


def test_data_parallel_without_mpi4py_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"pip install 'dendrite\[mpi\]'"):
        D.DataParallel()


def test_initialize_refuses_job_addresses():
    with pytest.raises(ValueError, match="mpiexec"):
        D.initialize(job_addresses="10.0.0.1:1234")


# --- under a distribution: one-batch methods, TensorBoard, the timer, threads ---------------
class _Rank1(D.Distribution):
    process_id = 1


def test_train_and_test_on_batch_refuse_under_a_distribution():
    model = _mlp()
    x, y = np.zeros((4, 4), "float32"), np.zeros(4, "int64")
    with _Rank1().scope():
        for method in (model.train_on_batch, model.test_on_batch):
            with pytest.raises(RuntimeError, match="not supported under a distribution"):
                method(x, y)
    assert np.isfinite(model.train_on_batch(x, y))  # one process: as before


def test_tensorboard_writes_on_rank_0_only(tmp_path):
    from dendrite.training.callbacks.tensorboard import TensorBoard

    model = _mlp()
    x, y = np.zeros((8, 4), "float32"), np.zeros(8, "int64")
    board = TensorBoard(tmp_path / "rank1", update_freq="batch", histogram_freq=1)
    callback_list = model._callbacks([board], None, 0, epochs=1, steps=1)
    with _Rank1().scope():  # the hooks as fit calls them, on rank 1
        callback_list.on_train_begin({})
        callback_list.on_train_batch_end(0, {"loss": 1.0})
        callback_list.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
        callback_list.on_train_end({})
    assert not (tmp_path / "rank1").exists()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[TensorBoard(tmp_path / "one")])
    assert (tmp_path / "one" / "train").is_dir()


def test_allreduce_timer_is_opt_in():
    pytest.importorskip("mpi4py")
    from dendrite.distribution.communicator import Communicator

    comm = Communicator()
    assert "allreduce_sum" not in comm.__dict__  # off: the plain method
    comm.time_allreduce()
    buffer = np.ones(4, "float32")
    assert comm.allreduce_sum(buffer) is buffer and comm.allreduce_calls == 1
    assert comm.allreduce_seconds > 0
    comm.time_allreduce(False)
    assert "allreduce_sum" not in comm.__dict__


class _Host:
    """A fake COMM_WORLD whose shared-memory split has ``local`` ranks."""

    def __init__(self, size, local):
        self.size, self.local = size, local

    def Get_size(self):
        return self.size

    def Split_type(self, kind):
        assert kind == "shared"
        return _Host(self.local, self.local)

    def Free(self):
        pass


class _MPI:
    COMM_TYPE_SHARED = "shared"


@pytest.fixture
def blas_restored():
    from dendrite import cpu_threads
    from dendrite.distribution import threads

    before = threads.blas_threads()
    yield
    threads.blas_threads(before)
    cpu_threads.reset()


def test_each_rank_takes_its_share_of_the_cores(monkeypatch, blas_restored):
    from dendrite.distribution import threads

    monkeypatch.delenv("DENDRITE_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 8)
    chosen = threads.limit_threads(_Host(6, 3), _MPI)
    assert (chosen.threads, chosen.ranks_on_host, chosen.source) == (2, 3, "share")
    assert chosen.blas in (None, 2)  # None only where no BLAS library is reachable
    assert D.thread_limits() is chosen and "3 rank(s) on this host" in str(chosen)
    assert threads.limit_threads(_Host(20, 10), _MPI).threads == 1
    monkeypatch.setenv("DENDRITE_NUM_THREADS", "3")
    chosen = threads.limit_threads(_Host(6, 3), _MPI)
    assert (chosen.threads, chosen.source) == (3, "DENDRITE_NUM_THREADS")
    monkeypatch.delenv("DENDRITE_NUM_THREADS")
    assert threads.limit_threads(_Host(1, 1), _MPI).source == "unchanged"


def test_kernels_learn_the_local_ranks_from_the_launcher(monkeypatch):
    from dendrite import _native

    for name in (*_native.LOCAL_RANKS_ENV, "DENDRITE_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert _native.launcher_local_ranks() == 1
    monkeypatch.setattr(_native.os, "cpu_count", lambda: 2)
    assert not _native._helper_limited()
    monkeypatch.setenv("MPI_LOCALNRANKS", "2")  # mpich's hydra
    assert _native.launcher_local_ranks() == 2 and _native._helper_limited()
    monkeypatch.setenv("DENDRITE_NUM_THREADS", "2")  # the override decides
    assert not _native._helper_limited()
