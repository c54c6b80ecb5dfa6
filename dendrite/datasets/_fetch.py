"""Finding a dataset's files on this machine, or downloading them once into the cache.

Places are tried in this order, and the first directory holding every file wins:

1. the ``path=`` argument of ``load_data`` (a directory; when given, it must hold the files);
2. ``$DENDRITE_DATA/<name>/``, then ``$DENDRITE_DATA/`` itself;
3. system directories, such as Debian's ``/usr/share/datasets/fashion-mnist``;
4. the cache, ``$DENDRITE_CACHE_DIR/datasets/<name>/`` (default ``~/.cache/dendrite``,
   or ``$XDG_CACHE_HOME/dendrite``);
5. the mirrors: each missing file is downloaded into the cache, checked against its size
   and SHA-256, and only then renamed into place, so a failed download leaves nothing.

A file counts whether it is stored gzip-compressed (``name.gz``) or not (``name``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DatasetChecksumError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "RemoteFile",
    "cache_dir",
    "download",
    "locate",
]

#: Seconds to wait on a mirror before giving up on it.
TIMEOUT = 30.0
_CHUNK = 1 << 20
#: The most bytes read from a mirror for a file whose size is not known in advance.
MAX_UNSIZED = 1 << 30


class _Progress:
    """A one-line download progress bar on stderr (only when it is a terminal)."""

    def __init__(self, name: str, total: int | None) -> None:
        self.name, self.total = name, total
        self.shown = -1
        self.live = os.isatty(2)

    def _write(self, text: str) -> None:
        os.write(2, text.encode())

    def update(self, size: int) -> None:
        if not self.live:
            return
        if self.total:
            percent = min(100, size * 100 // self.total)
            if percent == self.shown:
                return
            self.shown = percent
            bar = "=" * (percent // 4)
            self._write(f"\rDownloading {self.name} [{bar:<25}] {percent:3d}%")
        else:
            self._write(f"\rDownloading {self.name} {size >> 20} MiB")

    def done(self, size: int) -> None:
        if self.live:
            self._write(f"\rDownloaded {self.name} ({size} bytes)" + " " * 20 + "\n")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is nowhere on this machine and could not be downloaded."""


class DatasetChecksumError(ValueError):
    """A downloaded or stored file does not have the size or SHA-256 it must have."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset, as the mirrors serve it.

    Args:
        name: the file name on the mirrors, e.g. ``"train-images-idx3-ubyte.gz"``.
        size: its size in bytes, as served (None where only its SHA-256 is published:
            then at most ``MAX_UNSIZED`` bytes are read).
        sha256: the SHA-256 of the bytes served (the compressed file).
        content_sha256: the SHA-256 of the decompressed IDX bytes; it identifies the data
            however it was compressed (Debian recompresses, so its ``.gz`` differ).
    """

    name: str
    size: int | None
    sha256: str
    content_sha256: str = ""

    @property
    def stem(self) -> str:
        """The name without ``.gz``."""
        return self.name.removesuffix(".gz")


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and what it must look like.

    Args:
        name: short name, used for ``$DENDRITE_DATA/<name>`` and the cache folder.
        title: the name to show people, e.g. ``"Fashion-MNIST"``.
        files: train images, train labels, test images, test labels, in that order.
        mirrors: base URLs, tried in order; ``{name}`` in one is replaced by ``name``.
        system_dirs: directories where system packages install the files.
        n_train: number of training examples.
        n_test: number of test examples.
        how_to_get: one line per way to get the data, shown when it cannot be found.
    """

    name: str
    title: str
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]
    system_dirs: tuple[Path, ...]
    n_train: int
    n_test: int
    how_to_get: tuple[str, ...] = ()


def cache_dir(name: str) -> Path:
    """The cache directory for dataset ``name`` (it may not exist yet)."""
    root = os.environ.get("DENDRITE_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = os.path.join(xdg, "dendrite") if xdg else os.path.join("~", ".cache", "dendrite")
    return Path(root).expanduser() / "datasets" / name


def _mirrors(spec: DatasetSpec, mirrors: tuple[str, ...] | list[str] | None) -> list[str]:
    if mirrors is None:
        env = os.environ.get("DENDRITE_DATASET_MIRROR", "").strip()
        mirrors = re.split(r"[\s,]+", env) if env else spec.mirrors
    out = []
    for base in mirrors:
        base = base.replace("{name}", spec.name)
        out.append(base if base.endswith("/") else base + "/")
    return out


def _find_file(directory: Path, file: RemoteFile) -> Path | None:
    """``directory/name.gz`` or ``directory/name``, whichever exists first, else None."""
    for candidate in (directory / file.name, directory / file.stem):
        if candidate.is_file():
            return candidate
    return None


def _find_in(directory: Path, spec: DatasetSpec) -> tuple[dict[str, Path], list[str]]:
    """The files of ``spec`` found in ``directory``, and the names of those missing."""
    found, missing = {}, []
    for file in spec.files:
        hit = _find_file(directory, file)
        if hit is None:
            missing.append(file.name)
        else:
            found[file.name] = hit
    return found, missing


def _search_dirs(spec: DatasetSpec) -> list[tuple[str, Path]]:
    """(description, directory) of every place searched after ``path=``, in order."""
    places = []
    data = os.environ.get("DENDRITE_DATA")
    if data:
        root = Path(data).expanduser()
        places += [("$DENDRITE_DATA", root / spec.name), ("$DENDRITE_DATA", root)]
    places += [("system directory", Path(d)) for d in spec.system_dirs]
    places.append(("cache", cache_dir(spec.name)))
    return places


def locate(
    spec: DatasetSpec,
    path: str | os.PathLike[str] | None = None,
    *,
    download_missing: bool = True,
    mirrors: tuple[str, ...] | list[str] | None = None,
) -> list[Path]:
    """Find the files of ``spec``, downloading them into the cache if needed.

    Args:
        spec: the dataset.
        path: a directory that must hold the files; when given, nothing else is searched.
        download_missing: whether to download files missing from the cache.
        mirrors: base URLs to download from, instead of ``$DENDRITE_DATASET_MIRROR`` or the
            dataset's own mirrors.

    Returns:
        The path of each file of ``spec.files``, in order, all from one directory.

    Raises:
        DatasetNotFoundError: the files are nowhere and could not be downloaded; the
            message lists every place searched and how to get the data.
        DatasetChecksumError: a mirror served a file with the wrong size or SHA-256.
    """
    if path is not None:
        directory = Path(path).expanduser()
        found, missing = _find_in(directory, spec)
        if not missing:
            return [found[f.name] for f in spec.files]
        raise DatasetNotFoundError(
            f"{spec.title}: path={os.fspath(path)!r} is missing {', '.join(missing)} "
            f"(each may also be stored uncompressed, without .gz)"
        )
    looked = []
    for where, directory in _search_dirs(spec):
        found, missing = _find_in(directory, spec)
        if not missing:
            return [found[f.name] for f in spec.files]
        state = "does not exist" if not directory.is_dir() else f"lacks {', '.join(missing)}"
        looked.append(f"{where} {directory}: {state}")
    cache = cache_dir(spec.name)
    errors: list[str] = []
    if download_missing:
        try:
            return download(spec, mirrors=mirrors)
        except DatasetNotFoundError as exc:
            errors = [str(exc)]
    raise DatasetNotFoundError(_not_found_message(spec, looked, errors, cache, download_missing))


def _not_found_message(
    spec: DatasetSpec, looked: list[str], errors: list[str], cache: Path, tried: bool
) -> str:
    lines = [f"{spec.title} was not found. Looked in:"]
    lines += [f"  - {line}" for line in looked]
    if tried:
        lines.append("and could not download it:")
        lines += [f"  {line}" for error in errors for line in error.splitlines()]
    else:
        lines.append("and downloading was not allowed.")
    lines.append("To get it, any one of:")
    lines += [f"  - {way}" for way in spec.how_to_get]
    names = " ".join(f.name for f in spec.files)
    lines += [
        f"  - set DENDRITE_DATA to a directory holding {names} (or a subfolder {spec.name}/);",
        f"  - download those files from {spec.mirrors[0] if spec.mirrors else 'a mirror'} "
        f"into {cache}/ (or pass load_data(path=that_directory)).",
    ]
    return "\n".join(lines)


def download(
    spec: DatasetSpec, *, mirrors: tuple[str, ...] | list[str] | None = None
) -> list[Path]:
    """Download every file of ``spec`` not yet in its cache, verifying each one.

    Each file is streamed into a temporary file next to its final place, checked against its
    expected size and SHA-256, and renamed into place only if it matches (``os.replace``), so
    an interrupted or bad download never leaves a file behind. Mirrors are tried in order.

    Returns:
        The cached path of each file of ``spec.files``, in order.

    Raises:
        DatasetChecksumError: every mirror that answered served wrong bytes for some file.
        DatasetNotFoundError: no mirror could be reached for some file.
    """
    cache = cache_dir(spec.name)
    bases = _mirrors(spec, mirrors)
    import http.client  # only when downloading: keeps `import dendrite` fast

    paths = []
    for file in spec.files:
        cached = _find_file(cache, file)
        if cached is not None:
            paths.append(cached)
            continue
        cache.mkdir(parents=True, exist_ok=True)
        unreachable, corrupt = [], []
        for base in bases:
            url = base + file.name
            try:
                paths.append(_fetch_one(url, file, cache / file.name))
                break
            except DatasetChecksumError as exc:
                corrupt.append(str(exc))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                unreachable.append(f"{url}: {exc}")
        else:
            if corrupt:
                raise DatasetChecksumError("\n".join(corrupt + unreachable))
            tried = "\n  ".join(unreachable) or "no mirror is configured"
            raise DatasetNotFoundError(f"could not download {file.name}:\n  {tried}")
    return paths


def _fetch_one(url: str, file: RemoteFile, target: Path) -> Path:
    """Download ``url`` to ``target`` atomically, verifying ``file``'s size and SHA-256."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"only http:// and https:// mirrors are supported, got {url!r}")
    import urllib.request  # only when downloading: keeps `import dendrite` fast

    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{file.name}.", suffix=".part")
    try:
        digest, size = hashlib.sha256(), 0
        limit = MAX_UNSIZED if file.size is None else file.size
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            total = resp.headers.get("Content-Length")
            progress = _Progress(file.name, file.size or (int(total) if total else None))
            # Read at most one byte more than expected: enough to know the file is too long.
            while size <= limit:
                chunk = resp.read(min(_CHUNK, limit + 1 - size))
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
                progress.update(size)
            progress.done(size)
        if file.size is None and size > limit:
            raise DatasetChecksumError(f"{url}: more than {limit} bytes, not the expected file")
        if file.size is not None and size != file.size:
            more = "more than " if size > file.size else ""
            raise DatasetChecksumError(
                f"{url}: wrong size: expected {file.size} bytes, got {more}{size} "
                f"({'truncated download' if size < file.size else 'not the expected file'})"
            )
        actual = digest.hexdigest()
        if actual != file.sha256:
            raise DatasetChecksumError(
                f"{url}: wrong SHA-256: expected {file.sha256}, got {actual}"
            )
        os.replace(tmp_name, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    return target
