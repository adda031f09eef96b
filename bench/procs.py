"""Child processes of a bench run: started pinned to cores, watched, and always stopped.

Every child gets its own session (so its whole process group, e.g. gateway workers or
nginx workers, can be signalled at once by the child's id) and, on Linux, a parent-death
signal, so a bench killed hard does not leave servers behind. ``Supervisor.stop_all``
runs from a ``finally`` and on SIGTERM/SIGINT.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_setup(cores: frozenset[int] | None) -> None:
    # Runs in the child between fork and exec: pin it (its children inherit the mask),
    # and ask the kernel to SIGTERM it when the bench process dies.
    if cores:
        os.sched_setaffinity(0, cores)
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    cores: frozenset[int] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def tree(self) -> list[int]:
        """This child's pid and every descendant's (gateway workers, nginx workers, ...)."""
        return process_tree(self.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole tree so far."""
        return sum(_cpu_seconds(pid) for pid in self.tree())

    def rss_bytes(self) -> int:
        """Resident memory of the whole tree (shared pages counted once per process)."""
        return sum(_rss(pid) for pid in self.tree())


def _read_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return text[text.rfind(")") + 2 :].split()


def _cpu_seconds(pid: int) -> float:
    fields = _read_stat(pid)
    if fields is None:
        return 0.0
    # Fields 14 and 15 of stat (utime, stime), counted from the state field at index 0 = field 3.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _read_stat(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo and len(out) < 4096:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


@dataclass
class Supervisor:
    """Starts children into ``workdir`` (one log file each) and stops them all."""

    workdir: Path
    children: list[Child] = field(default_factory=list)

    def start(
        self, name: str, argv: Sequence[str], *, cores: Sequence[int] | None = None,
        env: dict[str, str] | None = None, cwd: Path | None = None, stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = None,
    ) -> Child:
        log_path = self.workdir / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - owned by the child's lifetime
        pinned = frozenset(cores) if cores else None
        proc = subprocess.Popen(
            list(argv), stdin=stdin, stdout=stdout if stdout is not None else log, stderr=log,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
            preexec_fn=lambda: _child_setup(pinned),
        )
        log.close()
        child = Child(name, proc, log_path, pinned)
        self.children.append(child)
        return child

    def stop(self, child: Child, timeout: float = 8.0) -> None:
        """SIGTERM the child's process group, then SIGKILL what is left after ``timeout``."""
        if child.alive():
            _signal_group(child.pid, signal.SIGTERM)
            try:
                child.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(child.pid, signal.SIGKILL)
                child.proc.wait(5)
        # Workers of a child that died first may still hold its group.
        _signal_group(child.pid, signal.SIGKILL)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in list(reversed(self.children)):
            try:
                self.stop(child)
            except Exception:  # noqa: BLE001 - keep stopping the rest
                pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_http(url: str, child: Child | None, timeout: float, expect: Sequence[int] = ()) -> None:
    """Poll ``url`` until it answers (any status, or one of ``expect``), the child dies, or
    ``timeout`` passes; raise RuntimeError with the child's log tail on failure."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{child.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if not expect or resp.status in expect:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            if not expect or exc.code in expect:
                return
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)
    tail = child.log_tail() if child is not None else ""
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s ({last})\n{tail}")
