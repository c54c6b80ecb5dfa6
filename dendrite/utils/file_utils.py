"""``keras.utils.get_file``: download a file once, keep it in a cache, check its hash and
optionally extract it; ``hash_file`` and ``validate_file``.

The cache is ``<cache_dir>/<cache_subdir>/<fname>``; ``cache_dir`` defaults to
``$DENDRITE_HOME``, else ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` when that is
not writable), so dendrite and Keras share downloads. A download streams (through
``urllib``: http, https, file and ftp URLs) into a temporary file beside the target, is
hashed on the way, and is renamed into place only when complete and, with ``file_hash``,
only when the hash matches; a failed or corrupted download leaves no file behind.
Archives are extracted by ``dendrite.utils.archives`` (hostile members refused).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
from typing import Any

from dendrite import _settings
from dendrite._atomic import atomic_writer
from dendrite.utils.archives import extract_archive

_CHUNK = 1 << 16
_log = logging.getLogger("dendrite")


def keras_home() -> str:
    """The cache root: ``$DENDRITE_HOME``, ``$KERAS_HOME`` or ``~/.keras``."""
    for variable in ("DENDRITE_HOME", "KERAS_HOME"):
        if os.environ.get(variable):
            return os.environ[variable]
    return os.path.join(os.path.expanduser("~"), ".keras")


def resolve_hasher(algorithm: str, file_hash: str | None = None) -> Any:
    """A hashlib object: "sha256", or "auto" with a 64-character hash, give SHA-256;
    anything else MD5 (Keras' rule, MD5 for older hashes)."""
    if algorithm == "sha256" or (algorithm == "auto" and file_hash and len(file_hash) == 64):
        return hashlib.sha256()
    if algorithm not in ("auto", "md5"):
        raise ValueError(
            f"Unknown hash_algorithm {algorithm!r}: expected 'auto', 'sha256' or 'md5'."
        )
    return hashlib.md5()


def hash_file(fpath: Any, algorithm: Any = "sha256", chunk_size: int = 65535) -> str:
    """The hex digest of the file at ``fpath`` ("sha256", "md5", "auto" or a hashlib object)."""
    hasher = resolve_hasher(algorithm) if isinstance(algorithm, str) else algorithm
    with open(fpath, "rb") as stream:
        for chunk in iter(lambda: stream.read(chunk_size), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def validate_file(
    fpath: Any, file_hash: str, algorithm: str = "auto", chunk_size: int = 65535
) -> bool:
    """Whether the file's hash is ``file_hash`` (SHA-256 or MD5, see ``resolve_hasher``)."""
    hasher = resolve_hasher(algorithm, file_hash)
    return hash_file(fpath, hasher, chunk_size) == str(file_hash).lower()


def _message(text: str) -> None:
    if _settings.is_interactive_logging_enabled():
        print(text, flush=True)
    else:
        _log.info(text)


def _download(origin: str, target: str, file_hash: str | None, algorithm: str) -> None:
    hasher = resolve_hasher(algorithm, file_hash) if file_hash is not None else None
    try:
        with urllib.request.urlopen(origin) as response, atomic_writer(target) as out:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                if hasher is not None:
                    hasher.update(chunk)
            if hasher is not None and hasher.hexdigest() != str(file_hash).lower():
                raise ValueError(
                    f"Incomplete or corrupted file detected. The {algorithm} file hash of the "
                    f"download from {origin} does not match the provided value of {file_hash} "
                    f"(got {hasher.hexdigest()}); the file was not kept."
                )
    except urllib.error.HTTPError as error:
        raise Exception(f"URL fetch failure on {origin}: {error.code} -- {error.msg}") from error
    except urllib.error.URLError as error:
        raise Exception(f"URL fetch failure on {origin}: None -- {error.reason}") from error


def _file_name(fname: Any, origin: str) -> str:
    if fname:
        fname = os.fspath(fname)
        if os.sep in fname or (os.altsep and os.altsep in fname):
            raise ValueError(
                f"Paths are no longer accepted as the `fname` argument. To specify the file's "
                f"parent directory, use the `cache_dir` argument. Received: fname={fname}"
            )
        if fname in (os.curdir, os.pardir):
            raise ValueError(f"Invalid `fname`: {fname!r}.")
        return fname
    name = os.path.basename(urllib.parse.urlsplit(origin).path)
    if not name or name in (os.curdir, os.pardir) or os.path.splitdrive(name)[0]:
        raise ValueError(
            f"Can't parse the file name from the origin provided: '{origin}'. Please specify "
            f"the `fname` argument."
        )
    return name


def get_file(
    fname: Any = None,
    origin: str | None = None,
    untar: bool = False,
    md5_hash: str | None = None,
    file_hash: str | None = None,
    cache_subdir: str = "datasets",
    hash_algorithm: str = "auto",
    extract: bool = False,
    archive_format: Any = "auto",
    cache_dir: Any = None,
    force_download: bool = False,
) -> str:
    """Download ``origin`` into the cache unless it is there already; return its path.

    Args:
        fname: the file's name in the cache (no directories); by default the last part of
            the URL's path. With ``extract``, a name without "." names the extraction
            directory (the archive is then ``<fname>_archive``); a name with one keeps the
            archive under that name and extracts to ``<stem>_extracted``.
        origin: the URL (http, https, file, ftp).
        untar: deprecated; as ``extract=True`` with ``archive_format="tar"``.
        md5_hash: deprecated; as ``file_hash`` with ``hash_algorithm="md5"``.
        file_hash: the expected SHA-256 or MD5 hex digest. A cached file that does not
            match is downloaded again; a download that does not match raises ValueError.
        cache_subdir: the directory under ``cache_dir`` (an absolute path is used as is).
        hash_algorithm: "auto" (SHA-256 for 64 hex digits, else MD5), "sha256" or "md5".
        extract: extract the archive (tar, tar.gz, tar.bz2, tar.xz or zip) and return the
            directory it went to.
        archive_format: "auto", "tar", "zip", a list of those, or None.
        cache_dir: the cache root (see the module docstring).
        force_download: download even when the file is cached.

    Returns:
        The path of the file, or of the extraction directory with ``extract``/``untar``.
    """
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    resolve_hasher(hash_algorithm)  # an unknown algorithm fails before any download
    base = os.path.expanduser(os.fspath(cache_dir) if cache_dir is not None else keras_home())
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        pass
    if not os.path.isdir(base) or not os.access(base, os.W_OK):
        base = os.path.join(tempfile.gettempdir(), ".keras")
    datadir = os.path.join(base, cache_subdir)
    os.makedirs(datadir, exist_ok=True)
    provided = bool(fname)
    fname = _file_name(fname, origin)
    extraction_dir = None
    if extract or untar:
        if provided and "." in fname:
            download_target = os.path.join(datadir, fname)
            extraction_dir = os.path.join(datadir, f"{fname[: fname.find('.')]}_extracted")
        else:
            extraction_dir = os.path.join(datadir, fname)
            download_target = os.path.join(datadir, f"{fname}_archive")
    else:
        download_target = os.path.join(datadir, fname)

    download = force_download or not os.path.exists(download_target)
    if not download and file_hash is not None:
        if not validate_file(download_target, file_hash, algorithm=hash_algorithm):
            _message(
                f"A local file was found, but it seems to be incomplete or outdated because the "
                f"{hash_algorithm} file hash does not match the original value of {file_hash} so "
                f"we will re-download the data."
            )
            download = True
    if download:
        _message(f"Downloading data from {origin}")
        _download(origin, download_target, file_hash, hash_algorithm)

    if extraction_dir is not None:
        fmt = "tar" if untar else archive_format
        if not extract_archive(download_target, extraction_dir, fmt):
            # As Keras: a warning, and the (absent) extraction directory is returned.
            warnings.warn(
                f"Could not extract archive {download_target!r}: not an archive of the format "
                f"{fmt!r}.",
                stacklevel=2,
            )
        return extraction_dir
    return download_target
