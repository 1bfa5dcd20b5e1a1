"""Downloading a pinned benchmark original: through pooch (streamed, timed out, with a progress bar), checked
against its pinned digest before it is kept, moved into place in one step so a failure leaves nothing behind.

The pinned registry is ``harness.data.SOURCES``: every task declares each of its files there with the public URL
of the original at a pinned commit and its sha256 (``harness.data`` calls in here; this module never imports it).
``BIASBOARD_DATA_MIRROR`` (a base URL serving a folder laid out like the data folder) replaces the original URLs,
for a local mirror or a test server; the digests stay the same.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from biasboard.harness.errors import DataError
from biasboard.harness.paths import download_dir

MIRROR_ENV = "BIASBOARD_DATA_MIRROR"
OFFLINE_ENV = "BIASBOARD_OFFLINE"
TIMEOUT = 30
"""Seconds pooch waits for the server before a download counts as failed."""

_auto = {"on": False, "progress": True}


class DownloadError(DataError):
    """The file could not be downloaded (no network, server down, HTTP error); ``reason`` is one short line."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"could not download {url}: {reason}")
        self.url, self.reason = url, reason


@contextlib.contextmanager
def auto_fetch(*, progress: bool = True):
    """Within this block ``harness.data.find`` downloads a missing file that has a pinned source (unless
    ``BIASBOARD_OFFLINE=1``): commands that need data switch it on; library calls and tests stay offline."""
    before = dict(_auto)
    _auto.update(on=os.environ.get(OFFLINE_ENV, "") not in ("1", "true", "yes"), progress=progress)
    try:
        yield
    finally:
        _auto.update(before)


def auto_fetch_on() -> bool:
    return _auto["on"]


def source_url(src) -> str:
    """The original's URL, or the same path under ``BIASBOARD_DATA_MIRROR`` when that is set."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f"{mirror.rstrip('/')}/{src.relpath}" if mirror else src.url


def download(src, root: Path | None = None, *, progress: bool | None = None, log=None) -> Path:
    """Download ``src`` (a ``harness.data.DataSource``) into ``root`` (default: ``paths.download_dir()``).

    The file goes to a temporary folder first; only a copy whose digest matches the pinned one is moved into the
    data folder, so a wrong digest (DataError naming file and both digests) or a network failure (DownloadError)
    leaves the data folder as it was."""
    url = source_url(src)
    root = Path(root) if root is not None else download_dir()
    dest = root / src.relpath
    if log:
        log(f"fetching {src.relpath} from {url}")
    with tempfile.TemporaryDirectory(prefix="biasboard-fetch-") as tmpdir:
        tmp = Path(tmpdir) / Path(src.relpath).name
        _get(url, tmp, _auto["progress"] if progress is None else progress)
        ok, got = src.matches(tmp)
        if not ok:
            kind, want = ("sha256", src.sha256) if src.sha256 else ("git blob id", src.git_blob_sha1)
            raise DataError(f"data file {src.relpath} downloaded from {url}: {kind} {got} does not match the "
                            f"pinned {want or '(none pinned)'}; the download was not kept")
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        try:
            shutil.copyfile(tmp, part)
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)
    return dest


def _get(url: str, out: Path, progress: bool) -> None:
    """Fetch ``url`` into ``out``: file:// by copying, anything else with pooch's HTTP downloader."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        try:
            shutil.copyfile(unquote(parsed.path), out)
        except OSError as exc:
            raise DownloadError(url, exc.strerror or str(exc)) from None
        return
    import pooch
    import requests

    try:
        pooch.HTTPDownloader(progressbar=progress, timeout=TIMEOUT)(url, str(out), None)
    except requests.HTTPError as exc:
        raise DownloadError(url, f"HTTP {exc.response.status_code} {exc.response.reason}") from None
    except (requests.RequestException, OSError) as exc:
        raise DownloadError(url, _reason(exc)) from None


def _reason(exc: Exception) -> str:
    """One short line for a network failure (requests nests the cause several levels deep)."""
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return errno.group(1).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:160]}" if text else type(exc).__name__
