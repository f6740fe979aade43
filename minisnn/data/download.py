"""Fetch, verify and unpack the official CIFAR archives.

    download_dataset("cifar10", data_dir=None) -> Path of cifar-10-batches-py/

Steps:
1. `fetch` downloads into `<archive>.part`.  A `.part` left by an earlier run is resumed with an
   HTTP Range request (a server that ignores Range sends everything again, and the file restarts).
   A transfer that ends early is resumed up to `retries` times, and then reported; the `.part` is
   kept so the next run continues from there.
2. The md5 of the finished file is compared with the official one.  On a mismatch the `.part`
   is deleted (its bytes cannot be trusted) and ChecksumError is raised.
3. `safe_extract` checks every member before writing anything: only regular files and folders,
   no absolute paths, no `..`, nothing that would land outside the target (no links, no devices).
"""
from __future__ import annotations

import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from .cifar import file_md5
from .locate import check_dataset_name, find_dataset_dir, resolve_root, DataNotFoundError


@dataclass(frozen=True)
class Archive:
    url: str
    md5: str
    folder: str  # top-level folder inside the archive


ARCHIVES = {
    "cifar10": Archive("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                       "c58f30108f718f92721af3b95e74349a", "cifar-10-batches-py"),
    "cifar100": Archive("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                        "eb9058c3a382ffc7106e4002c42a8d85", "cifar-100-python"),
}


class DownloadError(OSError):
    """The transfer failed or stayed incomplete after the retries."""


class ChecksumError(ValueError):
    """A downloaded file's md5 differs from the expected one."""


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the target folder, or is a link or device."""


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": "minisnn"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _transfer(url: str, part: Path, timeout: float, chunk_size: int, progress: bool, bars: list) -> tuple[int, int | None]:
    """One attempt: append to (or restart) `part`.  Returns (bytes on disk, expected total or None).

    The progress bar is made when the server first answers (kept in `bars` for the next attempts),
    so a machine without network sees no empty bar."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        resp = _open(url, offset, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left past `offset`: the .part is already whole
            return offset, offset
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    with resp:
        length = resp.headers.get("Content-Length")
        content_range = resp.headers.get("Content-Range", "")
        if offset and resp.status == 206 and content_range.startswith(f"bytes {offset}-"):
            mode = "ab"
        else:  # the server sent the whole file
            offset, mode = 0, "wb"
        total = offset + int(length) if length is not None else None
        if progress and not bars:
            bars.append(tqdm(unit="B", unit_scale=True, desc=part.name.removesuffix(".part")))
        bar = bars[0] if bars else None
        if bar is not None:
            bar.reset(total=total)
            bar.update(offset)
        with open(part, mode) as f:
            while chunk := resp.read(chunk_size):
                f.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
    return part.stat().st_size, total


def fetch(url: str, dest, md5: str | None = None, *, retries: int = 3, timeout: float = 60.0,
          chunk_size: int = 1 << 20, progress: bool = False) -> Path:
    """Download `url` to `dest` (resuming `dest.part`), check its md5, return `dest`."""
    dest = Path(dest)
    if dest.is_file() and (md5 is None or file_md5(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    bars: list = []
    problem = "no attempt made"
    try:
        for _ in range(retries + 1):
            try:
                size, total = _transfer(url, part, timeout, chunk_size, progress, bars)
            except (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if total is None or size >= total:
                break
            problem = f"the transfer stopped at {size:,} of {total:,} bytes"
        else:
            have = part.stat().st_size if part.exists() else 0
            kept = (f"{have:,} bytes kept in {part}, run again to resume" if have else
                    "nothing was downloaded: check the network, or fetch the archive by hand and unpack it "
                    f"into {dest.parent}")
            raise DownloadError(f"could not download {url} after {retries + 1} attempts ({problem}); {kept}")
    finally:
        for bar in bars:
            bar.close()
    if md5 is not None:
        got = file_md5(part)
        if got != md5:
            part.unlink()
            raise ChecksumError(f"md5 of {url} is {got}, expected {md5}; the partial file was deleted, "
                                f"run again to download afresh")
    part.replace(dest)
    return dest


def _check_member(member: tarfile.TarInfo, target: Path, archive: Path) -> None:
    name = member.name
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(f"{archive}: refusing link member {name!r} -> {member.linkname!r}")
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"{archive}: refusing special member {name!r} (device, fifo or similar)")
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise UnsafeArchiveError(f"{archive}: refusing member {name!r} (absolute path or '..')")
    if not (target / name).resolve().is_relative_to(target):
        raise UnsafeArchiveError(f"{archive}: member {name!r} would land outside {target}")


def safe_extract(archive, target) -> list[str]:
    """Unpack a tar(.gz) archive into `target` after checking every member; returns the member names."""
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    target = target.resolve()
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            _check_member(member, target, archive)
        if hasattr(tarfile, "data_filter"):  # the standard library's own checks, as a second guard
            tar.extractall(target, members=members, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            tar.extractall(target, members=members)
    return [m.name for m in members]


def download_dataset(dataset: str = "cifar10", data_dir=None, *, url: str | None = None, md5: str | None = None,
                     keep_archive: bool = False, progress: bool = True, retries: int = 3,
                     timeout: float = 60.0) -> Path:
    """Make sure `dataset` ('cifar10' | 'cifar100') is unpacked under data_dir (else $MINISNN_DATA_DIR,
    else the cache folder) and return its batches folder.  Nothing is fetched if it is already there.
    `url` / `md5` override the official archive (for mirrors and tests)."""
    archive_info = ARCHIVES[check_dataset_name(dataset)]
    root, _ = resolve_root(data_dir)
    try:
        return find_dataset_dir(root, dataset)
    except DataNotFoundError:
        pass
    url = url or archive_info.url
    md5 = md5 or archive_info.md5
    archive = fetch(url, root / PurePosixPath(url).name, md5, retries=retries, timeout=timeout, progress=progress)
    safe_extract(archive, root)
    if not keep_archive:
        archive.unlink()
    return find_dataset_dir(root, dataset)
