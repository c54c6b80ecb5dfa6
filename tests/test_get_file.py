"""keras.utils.get_file against a local http.server and file:// URLs: hashes checked (a
wrong one raises and keeps nothing), the cache reused, tar.gz and zip extracted, hostile
archives (../ paths, absolute paths, symlinks out, oversized) refused with nothing
written."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from dendrite.utils import extract_archive, get_file


@pytest.fixture()
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def _tar_gz(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)


def test_download_hash_and_cache(server, tmp_path) -> None:
    served, url, hits = server
    payload = os.urandom(200_000)
    (served / "data.bin").write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    cache = tmp_path / "cache"
    path = get_file(origin=f"{url}/data.bin", file_hash=sha, cache_dir=cache)
    assert Path(path) == cache / "datasets" / "data.bin"
    assert Path(path).read_bytes() == payload
    again = get_file("data.bin", f"{url}/data.bin", file_hash=sha, cache_dir=cache)
    assert again == path and hits == ["/data.bin"]  # the cache was used
    md5 = hashlib.md5(payload).hexdigest()
    assert get_file("data.bin", f"{url}/data.bin", md5_hash=md5, cache_dir=cache) == path
    assert len(hits) == 1
    get_file("data.bin", f"{url}/data.bin", cache_dir=cache, force_download=True)
    assert len(hits) == 2
    leftovers = [p.name for p in (cache / "datasets").iterdir() if p.name != "data.bin"]
    assert leftovers == []


def test_wrong_hash_raises_and_keeps_nothing(server, tmp_path) -> None:
    served, url, _ = server
    (served / "x.txt").write_bytes(b"hello")
    with pytest.raises(ValueError, match="file hash of the download .* does not match"):
        get_file("x.txt", f"{url}/x.txt", file_hash="0" * 64, cache_dir=tmp_path)
    assert list((tmp_path / "datasets").iterdir()) == []


def test_stale_cached_file_is_downloaded_again(server, tmp_path) -> None:
    served, url, hits = server
    (served / "x.txt").write_bytes(b"fresh")
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "x.txt").write_bytes(b"stale")
    sha = hashlib.sha256(b"fresh").hexdigest()
    path = get_file("x.txt", f"{url}/x.txt", file_hash=sha, cache_dir=tmp_path)
    assert Path(path).read_bytes() == b"fresh" and hits == ["/x.txt"]


def test_http_errors_and_bad_arguments(server, tmp_path) -> None:
    _, url, _ = server
    with pytest.raises(Exception, match="URL fetch failure.*404"):
        get_file("nope", f"{url}/nope", cache_dir=tmp_path)
    assert list((tmp_path / "datasets").iterdir()) == []
    with pytest.raises(ValueError, match="origin"):
        get_file("a")
    with pytest.raises(ValueError, match="Paths are no longer accepted"):
        get_file("sub/a", f"{url}/a", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="file name"):
        get_file(origin=f"{url}/..", cache_dir=tmp_path)


def test_file_url_and_extraction_tar_gz_and_zip(tmp_path) -> None:
    archive = tmp_path / "src.tar.gz"
    _tar_gz(archive, {"pkg/a.txt": b"A", "pkg/sub/b.txt": b"B"}, {"pkg/link": "a.txt"})
    out = get_file("pkg.tar.gz", archive.as_uri(), extract=True, cache_dir=tmp_path / "c")
    assert Path(out) == tmp_path / "c" / "datasets" / "pkg_extracted"
    assert (Path(out) / "pkg" / "sub" / "b.txt").read_bytes() == b"B"
    assert (Path(out) / "pkg" / "link").read_bytes() == b"A"
    zipped = tmp_path / "z.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("d/x.txt", "X")
    out = get_file("zdir", zipped.as_uri(), extract=True, cache_dir=tmp_path / "c")
    assert Path(out) == tmp_path / "c" / "datasets" / "zdir"
    assert (Path(out) / "d" / "x.txt").read_text() == "X"
    assert (tmp_path / "c" / "datasets" / "zdir_archive").is_file()
    out = get_file("u", archive.as_uri(), untar=True, cache_dir=tmp_path / "c")
    assert (Path(out) / "pkg" / "a.txt").read_bytes() == b"A"


@pytest.mark.parametrize(
    "members, links",
    [
        ({"../evil.txt": b"x"}, None),
        ({"ok.txt": b"1", "a/../../evil.txt": b"x"}, None),
        ({"/tmp/evil_abs.txt": b"x"}, None),
        ({"ok.txt": b"1"}, {"out": "../../outside"}),
        ({"ok.txt": b"1"}, {"abs": "/etc/passwd"}),
    ],
)
def test_hostile_tar_is_refused_and_nothing_written(tmp_path, members, links) -> None:
    archive = tmp_path / "bad.tar.gz"
    _tar_gz(archive, members, links)
    target = tmp_path / "out"
    with pytest.raises(ValueError, match="Refusing to extract"):
        extract_archive(archive, target)
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz"]


def test_symlink_chain_escaping_through_an_earlier_link_is_refused(tmp_path) -> None:
    # "s" -> "." is inside; "s/s/s/l" -> "../../x" reads inside lexically but lands outside.
    archive = tmp_path / "chain.tar"
    with tarfile.open(archive, "w") as tar:
        for name, target in (("s", "."), ("s/s/s/l", "../../x")):
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    with pytest.raises(ValueError, match="Refusing to extract"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zip_slip_and_oversized_archives_are_refused(tmp_path) -> None:
    zipped = tmp_path / "slip.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("fine.txt", "1")
        z.writestr("../../slip.txt", "x")
    with pytest.raises(ValueError, match="slip.txt"):
        extract_archive(zipped, tmp_path / "out")
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros", b"\0" * 2_000_000)
    with pytest.raises(ValueError, match="more than the limit"):
        extract_archive(big, tmp_path / "out", max_bytes=1_000_000)
    assert not (tmp_path / "out").exists()
    assert extract_archive(big, tmp_path / "out") is True
    assert (tmp_path / "out" / "zeros").stat().st_size == 2_000_000


def test_non_archive_and_unknown_format(tmp_path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("not an archive")
    assert extract_archive(plain, tmp_path / "o") is False
    assert extract_archive(plain, tmp_path / "o", archive_format=None) is False
    with pytest.raises(NotImplementedError):
        extract_archive(plain, tmp_path / "o", archive_format="rar")
    with pytest.warns(UserWarning, match="Could not extract"):
        get_file("p.txt", plain.as_uri(), extract=True, cache_dir=tmp_path / "c")


def test_cache_dir_default_reads_keras_home(tmp_path, monkeypatch) -> None:
    source = tmp_path / "f.txt"
    source.write_text("hi")
    monkeypatch.delenv("DENDRITE_HOME", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert get_file(origin=source.as_uri()) == str(tmp_path / "kh" / "datasets" / "f.txt")
    monkeypatch.setenv("DENDRITE_HOME", str(tmp_path / "dh"))
    assert get_file(origin=source.as_uri()) == str(tmp_path / "dh" / "datasets" / "f.txt")
