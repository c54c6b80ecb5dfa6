"""Atomic writes (issue #12): stale temporaries of killed writes are cleared by the next
write to the same target and nothing else is touched; saved files get the user's usual
mode (0666 less the umask), and an overwrite keeps the existing file's mode."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import dendrite as tf
import dendrite.saving  # noqa: F401 (installs the saving hooks)
from dendrite import _atomic
from dendrite._atomic import atomic_write_bytes, remove_stale_temporaries
from dendrite.saving.checkpoint import write_checkpoint

ROOT = Path(__file__).resolve().parents[1]
OLD = time.time() - 2 * _atomic.STALE_AFTER_S


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def live_pid():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process.pid
    process.kill()
    process.wait()


def _temp(directory: Path, target: str, middle: str, payload=b"half", mtime=None) -> Path:
    path = directory / f".{target}.{middle}.tmp"
    path.write_bytes(payload)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _left(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


# -- 4. stale temporaries -----------------------------------------------------------


def test_a_dead_writers_temporary_is_removed_by_the_next_write(tmp_path):
    stale = _temp(tmp_path, "f.bin", f"{_atomic._HOST}-{_dead_pid()}.abcdef12", b"x" * 4096)
    atomic_write_bytes(tmp_path / "f.bin", b"new")
    assert not stale.exists()
    assert _left(tmp_path) == {"f.bin"}


def test_temporaries_of_live_writers_are_kept(tmp_path, live_pid):
    keep = [
        _temp(tmp_path, "f.bin", f"{_atomic._HOST}-{live_pid}.abcdef12"),  # another process
        _temp(tmp_path, "f.bin", f"{_atomic._HOST}-{os.getpid()}.abcdef13"),  # another thread
        _temp(tmp_path, "f.bin", f"0000beef-{_dead_pid()}.abcdef14"),  # another machine
        _temp(tmp_path, "f.bin", "abcdef15"),  # an older dendrite's name, recent
    ]
    atomic_write_bytes(tmp_path / "f.bin", b"new")
    assert all(path.exists() for path in keep)
    assert remove_stale_temporaries(tmp_path / "f.bin") == 0


def test_old_temporaries_whose_writer_cannot_be_checked_are_removed(tmp_path):
    gone = [
        _temp(tmp_path, "f.bin", f"0000beef-{os.getpid() + 1}.abcdef14", mtime=OLD),
        _temp(tmp_path, "f.bin", "abc_ef15", mtime=OLD),
    ]
    assert remove_stale_temporaries(tmp_path / "f.bin") == 2
    assert not any(path.exists() for path in gone)


def test_nothing_but_the_targets_own_temporaries_is_touched(tmp_path):
    dead = _dead_pid()
    own = f"{_atomic._HOST}-{dead}.abcdef12"
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"keep me")
    names = [
        ".f.bin.tmp",
        f".f.bin.{own}.tmp.bak",
        f"f.bin.{own}.tmp",  # no leading dot
        f".f.bin.{own}x.tmp",
        f".f.bin.{_atomic._HOST}-{dead}.ABCDEF12.tmp",
        f".f.bin.{_atomic._HOST}-{dead}.abcdef1.tmp",
        f".g.bin.{own}.tmp",  # another target
        f".f.bin.extra.{own}.tmp",  # the temporary of a target named f.bin.extra
        ".f.bin.notmine!.tmp",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"other")
        os.utime(tmp_path / name, (OLD, OLD))
    (tmp_path / f".f.bin.{_atomic._HOST}-{dead}.abcdef13.tmp").mkdir()  # a directory
    (tmp_path / f".f.bin.{_atomic._HOST}-{dead}.abcdef14.tmp").symlink_to(precious)
    before = _left(tmp_path)
    atomic_write_bytes(tmp_path / "f.bin", b"new")
    assert _left(tmp_path) == before | {"f.bin"}
    assert precious.read_bytes() == b"keep me"


def test_a_killed_write_leaves_a_temporary_the_next_save_removes(tmp_path):
    target = tmp_path / "m.dendrite"
    script = (
        "import os, signal, sys\n"
        "from dendrite._atomic import atomic_writer\n"
        "with atomic_writer(sys.argv[1]) as stream:\n"
        "    stream.write(b'x' * (1 << 20)); stream.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    process = subprocess.run([sys.executable, "-c", script, str(target)], cwd=ROOT)
    assert process.returncode == -signal.SIGKILL
    (leftover,) = tmp_path.iterdir()
    assert leftover.name.startswith(".m.dendrite.") and leftover.stat().st_size == 1 << 20
    model = tf.Sequential([tf.layers.Dense(2, input_shape=(3,))])
    model.save(target)
    assert _left(tmp_path) == {"m.dendrite"}


@pytest.mark.parametrize("kind", ["save", "save_weights", "h5", "checkpoint"])
def test_every_saver_clears_stale_temporaries(tmp_path, kind):
    model = tf.Sequential([tf.layers.Dense(2, input_shape=(3,))])
    name = {
        "save": "m.dendrite",
        "save_weights": "w.weights.safetensors",
        "h5": "w.weights.h5",
        "checkpoint": "latest.checkpoint",
    }[kind]
    if kind == "h5":
        pytest.importorskip("h5py")
    _temp(tmp_path, name, f"{_atomic._HOST}-{_dead_pid()}.abcdef12", b"x" * 4096)
    if kind == "save":
        model.save(tmp_path / name)
    elif kind == "checkpoint":
        write_checkpoint(model, tmp_path / name, {"epoch": 0})
    else:
        model.save_weights(tmp_path / name)
    assert _left(tmp_path) == {name}


def test_a_failed_write_leaves_no_temporary(tmp_path):
    with contextlib.suppress(RuntimeError):
        with _atomic.atomic_writer(tmp_path / "f.bin") as stream:
            stream.write(b"half")
            raise RuntimeError("boom")
    assert _left(tmp_path) == set()


# -- 5. file modes ------------------------------------------------------------------


@contextlib.contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _save(kind: str, path: Path) -> None:
    model = tf.Sequential([tf.layers.Dense(2, input_shape=(3,))])
    if kind == "bytes":
        atomic_write_bytes(path, b"data")
    elif kind == "save":
        model.save(path)
    elif kind == "checkpoint":
        write_checkpoint(model, path, {"epoch": 0})
    else:
        model.save_weights(path)


SAVERS = {
    "bytes": "f.bin",
    "save": "m.dendrite",
    "save_weights": "w.weights.safetensors",
    "h5": "w.weights.h5",
    "checkpoint": "latest.checkpoint",
}


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
@pytest.mark.parametrize("kind", list(SAVERS))
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002, 0o027])
def test_new_files_get_the_users_usual_mode(tmp_path, kind, mask):
    if kind == "h5":
        pytest.importorskip("h5py")
    path = tmp_path / SAVERS[kind]
    with _umask(mask):
        _save(kind, path)
        (tmp_path / "plain").write_bytes(b"")  # what any file the user creates gets
    assert _mode(path) == 0o666 & ~mask == _mode(tmp_path / "plain")


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
@pytest.mark.parametrize("kind", list(SAVERS))
@pytest.mark.parametrize("existing", [0o600, 0o640, 0o644, 0o664, 0o755])
def test_an_overwrite_keeps_the_files_mode(tmp_path, kind, existing):
    if kind == "h5":
        pytest.importorskip("h5py")
    path = tmp_path / SAVERS[kind]
    with _umask(0o022):
        _save(kind, path)
    os.chmod(path, existing)
    with _umask(0o077):
        _save(kind, path)
    assert _mode(path) == existing


def test_the_saved_bytes_are_still_the_payload(tmp_path):
    payload = np.arange(1000, dtype=np.uint8).tobytes()
    atomic_write_bytes(tmp_path / "f.bin", payload)
    atomic_write_bytes(tmp_path / "f.bin", payload[::-1])
    assert (tmp_path / "f.bin").read_bytes() == payload[::-1]
    with pytest.raises(FileExistsError):
        atomic_write_bytes(tmp_path / "f.bin", b"", overwrite=False)
