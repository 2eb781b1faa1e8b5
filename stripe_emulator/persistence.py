"""The emulator's state in a file, so a restart is the same Stripe: same accounts, same links.

`StateFile` is one JSON snapshot of everything the emulator holds — accounts (the platform's id
too) and the base url its links were minted on, each account's objects and events, its
idempotency keys (by a digest of the API key, never the key) and its request counts. It is
written whole after every request that may change the state, before that request is answered
(to a temporary file, then `os.replace`, so a crash leaves the previous snapshot or the new
one, never half of one; concurrent requests share a write), and read once at start.
`:memory:` keeps nothing.

A file that cannot be read back is an `EmulatorStateError` naming it: the emulator never starts
empty over a state it could not read, since links minted in it would then answer 404.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson


class Emulator(Protocol):
    """What a state file needs of the emulator it keeps (state.Emulator; named here, not imported,
    as state.py imports this module)."""

    lock: threading.Lock
    state_file: StateFile | None

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, kept: dict[str, Any]) -> None: ...


IN_MEMORY = ":memory:"
FORMAT = "paylinks-stripe-emulator/1"


class EmulatorStateError(Exception):
    """The state file cannot be read or written; the message names it and says what to do."""


class StateFile:
    """Where one emulator keeps its state across restarts."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._written = threading.Condition()  # guards the counters below; one write at a time
        self._requested = 0  # changes announced by `save` calls
        self._saved = 0  # changes the file holds
        self._writing = False
        self.writes = 0
        self.seconds_writing = 0.0  # for "what does keeping the state cost per request"

    def read(self) -> dict[str, Any] | None:
        """The kept state, or None when there is no file yet (a fresh emulator)."""
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise self._unreadable(f"{type(error).__name__}: {error}") from None
        try:
            kept = orjson.loads(text)
        except ValueError as error:
            raise self._unreadable(f"it is not JSON ({error})") from None
        if not isinstance(kept, dict) or kept.get("format") != FORMAT:
            raise self._unreadable(f"it is not a state file of this emulator (no format {FORMAT!r})")
        return kept

    def remembered_port(self) -> int | None:
        """The port the kept links point at (None without a file, or for a file that names none)."""
        kept = self.read()
        try:
            return urlsplit(str(kept["base_url"])).port if kept else None
        except (KeyError, ValueError):
            return None

    def load_into(self, emulator: Emulator, *, account_id: str | None = None) -> None:
        """Give `emulator` the kept state (if any) and make it write here after every change.

        `account_id`, when given, must be the platform account the file remembers."""
        kept = self.read()
        if kept is not None:
            if account_id is not None and kept.get("platform_account") != account_id:
                raise EmulatorStateError(
                    f"the Stripe emulator's state in {self.path} is of account {kept.get('platform_account')}, "
                    f"not {account_id}; use another --state file, or move this one aside"
                )
            try:
                emulator.restore(kept)
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise self._unreadable(
                    f"its contents are incomplete ({type(error).__name__}: {error})"
                ) from None
        emulator.state_file = self

    def save(self, emulator: Emulator) -> None:
        """Write the emulator's whole state, atomically, once this call's changes are in it.

        Group commit: a call that finds a write under way waits for the next one, which carries
        every change made until it starts, so concurrent requests share one write."""
        with self._written:
            self._requested += 1
            wanted = self._requested
            while self._saved < wanted:
                if self._writing:
                    self._written.wait()
                    continue
                self._writing = True
                covered = self._requested  # the snapshot taken below holds every change counted so far
                self._written.release()
                try:
                    self._write(emulator)
                finally:
                    self._written.acquire()
                    self._writing = False
                    self._written.notify_all()
                self._saved = max(self._saved, covered)

    def _write(self, emulator: Emulator) -> None:
        started = time.perf_counter()
        with emulator.lock:
            data = orjson.dumps({"format": FORMAT, **emulator.snapshot()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            # 0600: the state holds the customers' email addresses of every checkout.
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            os.replace(temporary, self.path)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise EmulatorStateError(
                f"cannot write the Stripe emulator's state to {self.path}: {error.strerror or error}"
            ) from None
        self.writes += 1
        self.seconds_writing += time.perf_counter() - started

    def _unreadable(self, why: str) -> EmulatorStateError:
        return EmulatorStateError(
            f"cannot read the Stripe emulator's state from {self.path}: {why}; move the file aside "
            "(or delete it) to start an empty emulator, whose accounts and links are new"
        )


def state_file(path: str | os.PathLike[str] | None) -> StateFile | None:
    """The state file at `path`; None (memory only) for None or `:memory:`."""
    if path is None or str(path) == IN_MEMORY:
        return None
    return StateFile(path)
