"""Output folders that carecheck may replace, and replacing them without losing anything.

carecheck writes a run into a fresh hidden folder beside the target and moves it into place
only when every file is written. It replaces a folder only when that folder is empty or
carries carecheck's marker file (:data:`MARKER`, written into every output folder); anything
else — a planner's own folder, a home directory, a file — is refused before any solving
starts. One lock file per target (``.NAME.lock`` beside it, an OS lock released when the
process ends, however it ends) serialises the runs that write one folder: a second run is
refused at once with a message naming the folder. Temporary folders of runs that died
(``.NAME.tmp-*``, ``.NAME.old-*``) are removed by the next run that holds the lock, since
only the holder of the lock creates them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from carecheck.errors import DataError

MARKER = ".carecheck-output"
MARKER_TEXT = (
    "This folder was written by carecheck. carecheck replaces it when a run writes here again;\n"
    "remove this file to keep carecheck from ever replacing the folder.\n"
)


def resolve_target(out_dir: str | Path) -> Path:
    """The output folder as an absolute path (links followed); refuses what may not be one."""
    target = Path(out_dir).expanduser().resolve()
    if target.parent == target:
        raise DataError(f"--out {out_dir}: a filesystem root cannot be an output folder")
    check_replaceable(target, given=str(out_dir))
    return target


def check_replaceable(target: Path, *, given: str | None = None) -> None:
    """Raise :class:`DataError` unless ``target`` is missing, an empty folder or one that
    carries carecheck's marker."""
    shown = given if given is not None else str(target)
    if not target.exists():
        return
    if not target.is_dir():
        raise DataError(
            f"output folder {shown}: this is a file, not a folder; carecheck does not replace "
            "files. Choose another --out"
        )
    if (target / MARKER).is_file():
        return
    try:
        empty = next(target.iterdir(), None) is None
    except OSError as exc:
        raise DataError(f"output folder {shown}: cannot be read ({exc.strerror})") from None
    if not empty:
        raise DataError(
            f"output folder {shown} already exists and is not a carecheck output folder (it "
            f"has no {MARKER} file): carecheck will not replace it or anything in it. Choose "
            "another --out, or empty the folder yourself"
        )


def _lock_file(handle: int) -> bool:
    """Take an exclusive, non-blocking OS lock on an open file; False when another holds it."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            os.lseek(handle, 0, os.SEEK_SET)
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def locked(target: Path) -> Iterator[None]:
    """Hold the lock of output folder ``target`` (created beside it) for the block; refuse at
    once when another run holds it. Stale temporary folders of dead runs are removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    path = target.parent / f".{target.name}.lock"
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        handle = os.open(path, flags, 0o644)
    except OSError as exc:
        raise DataError(
            f"output folder {target}: cannot create its lock {path} ({exc.strerror})"
        ) from None
    try:
        if not _lock_file(handle):
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                os.lseek(handle, 0, os.SEEK_SET)
                holder = f" (process {int(os.read(handle, 32).decode().strip())})"
            raise DataError(
                f"output folder {target}: another carecheck run{holder} is writing it; wait "
                "for that run to end, or choose another --out"
            )
        os.lseek(handle, 0, os.SEEK_SET)
        os.write(handle, f"{os.getpid():<12d}\n".encode())
        _remove_stale(target)
        yield
    finally:
        os.close(handle)  # closing releases the lock; the file stays (removing it would race)


def _remove_stale(target: Path) -> None:
    """Remove the temporary folders dead runs left beside ``target`` (caller holds the lock)."""
    for pattern in (f".{target.name}.tmp-*", f".{target.name}.old-*"):
        for stale in target.parent.glob(pattern):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)


def write_folder(target: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(folder)`` on a fresh folder beside ``target`` and move it into place.

    ``target`` is replaced only when every file is written and only when it may be replaced
    (see :func:`check_replaceable`, checked again here); until then the old folder stays as it
    was. The caller holds :func:`locked`.
    """
    check_replaceable(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        (tmp / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
        write(tmp)
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _swap(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an old ``target`` is kept until the move succeeded."""
    if not target.exists():
        os.replace(new, target)
        return
    if not (target / MARKER).is_file():  # an empty folder (checked): nothing to keep
        target.rmdir()
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=target.parent))
    old.rmdir()  # a unique name that only this run uses
    try:
        os.replace(target, old)
    except OSError as exc:
        raise DataError(
            f"output folder {target}: cannot be replaced ({exc.strerror}); close the programs "
            "that have files in it open, then run again"
        ) from None
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


_SIDECARS = (".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


def fingerprint(path: Path) -> dict:
    """Size and SHA-256 of a file (a Shapefile: of it and of its sidecar files together)."""
    parts = [path]
    if path.suffix.lower() == ".shp":
        parts += [s for s in sorted(path.parent.glob(path.stem + ".*")) if s.suffix in _SIDECARS]
    digest = hashlib.sha256()
    size = 0
    for part in parts:
        with part.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    return {"size": size, "sha256": digest.hexdigest()}


def portable_path(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` where it can be (same drive), else absolute; with
    forward slashes, so that a folder moved between Windows and Linux still resolves."""
    try:
        return Path(os.path.relpath(path, folder)).as_posix()
    except ValueError:  # another drive on Windows
        return Path(path).as_posix()


def read_result(folder: str | Path, *, needs: tuple[str, ...] = ()) -> dict:
    """The ``result.json`` of a finished run's folder (the one reader of it).

    Raises
    ------
    DataError
        When the folder holds no readable result, or one without the keys in ``needs``.
    """
    folder = Path(folder)
    path = folder / "result.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{path}: not found; run `carecheck run SCENARIO --out {folder}` first "
            "(or name a carecheck output folder)"
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable result.json ({exc})") from None
    if not isinstance(document, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(document).__name__}")
    missing = [k for k in needs if k not in document]
    if missing:
        raise DataError(f"{path}: missing key(s) {missing}; is this a carecheck output folder?")
    return document
