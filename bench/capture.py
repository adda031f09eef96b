"""A relay's own delay per streamed chunk, from a packet capture on the loopback interface.

The load generator's chunk delay (its arrival time minus the upstream's stamp) includes its
own lag and the upstream's, which share a core here; this measures the relay alone. tcpdump
captures what the upstream sends to the relay and what the relay sends to its client. On
loopback a packet is stamped as its sender's write puts it on the interface, so for each
delta marker ``t=<ns>`` the stamp of the first relay-to-client packet holding it, minus the
stamp of the first upstream-to-relay packet holding it, is the time from the upstream's
write to the relay's write: its wake-up, read, parse (and translation) and write.

Needs tcpdump and dpkt (``python -m bench setup capture``) and root (or CAP_NET_RAW).
"""

from __future__ import annotations

import bisect
import shutil
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from bench.bodies import MARKER
from bench.procs import Child, Supervisor

READY_S = 10.0


def missing() -> str | None:
    """Why a capture cannot run here, or None."""
    if shutil.which("tcpdump") is None:
        return "tcpdump is not installed (python -m bench setup capture)"
    try:
        import dpkt  # noqa: F401
    except ImportError:
        return "dpkt is not installed (python -m bench setup capture)"
    return None


class RelayCapture:
    """Captures, while open, the TCP payloads sent from ``upstream_port`` and from ``relay_port`` on lo."""

    def __init__(self, sup: Supervisor, workdir: Path, cores: Sequence[int], upstream_port: int, relay_port: int,
                 name: str) -> None:
        self.sup, self.upstream_port, self.relay_port = sup, upstream_port, relay_port
        self.path = workdir / f"capture-{name}.pcap"
        self.path.unlink(missing_ok=True)
        # -U writes each packet as it comes, -B a 64 MiB kernel buffer so nothing drops.
        argv = ["tcpdump", "-i", "lo", "-n", "-U", "-s", "0", "-B", "65536", "--time-stamp-precision=nano",
                "-w", str(self.path), f"tcp src port {upstream_port} or tcp src port {relay_port}"]
        self.child: Child = sup.start(f"tcpdump-{name}", argv, cores=cores)
        deadline = time.monotonic() + READY_S
        while "listening on" not in self.child.log_tail(5):
            if not self.child.alive() or time.monotonic() > deadline:
                tail = self.child.log_tail()
                sup.stop(self.child)
                raise RuntimeError(f"tcpdump did not start: {tail}")
            time.sleep(0.02)

    def close(self) -> dict[str, object]:
        """Stop capturing; the per-marker relay delays in ns, how bursty the upstream was
        before the slowest of them, and the kernel's drop count."""
        self.sup.stop(self.child)
        delays, writes_before = relay_delays(self.path, self.upstream_port, self.relay_port)
        dropped = 0
        for line in self.child.log_tail(10).splitlines():
            if line.endswith("packets dropped by kernel"):
                dropped = int(line.split()[0])
        self.path.unlink(missing_ok=True)
        ranked = sorted(range(len(delays)), key=delays.__getitem__)
        slowest = ranked[len(ranked) * 99 // 100:]
        return {
            "delays_ns": delays, "dropped": dropped,
            "burst_all": round(sum(writes_before) / len(writes_before), 2) if writes_before else None,
            "burst_slowest": round(sum(writes_before[i] for i in slowest) / len(slowest), 2) if slowest else None,
        }


def relay_delays(path: Path, upstream_port: int, relay_port: int) -> tuple[list[int], list[int]]:
    """For each marker seen on both sides: first relay-side stamp minus first upstream-side
    stamp, in ns; and, for each, how many deltas the upstream wrote in the millisecond up to
    its own write (its burst: a relay works through a burst one delta after another)."""
    import dpkt

    sent: dict[bytes, Decimal] = {}
    relayed: dict[bytes, Decimal] = {}
    with open(path, "rb") as f:
        # A nanosecond capture's stamps come as exact Decimal seconds.
        for ts, frame in dpkt.pcap.Reader(f):
            ip = dpkt.ethernet.Ethernet(frame).data
            tcp = getattr(ip, "data", None)
            if not isinstance(tcp, dpkt.tcp.TCP) or not tcp.data:
                continue
            side = sent if tcp.sport == upstream_port else relayed if tcp.sport == relay_port else None
            if side is None:
                continue
            for m in MARKER.finditer(tcp.data):
                side.setdefault(m.group(1), ts)
    times = sorted(sent.values())
    window = Decimal("0.001")
    delays, bursts = [], []
    for k, t in relayed.items():
        if k in sent:
            t0 = sent[k]
            delays.append(int((t - t0) * 1_000_000_000))
            bursts.append(bisect.bisect_right(times, t0) - bisect.bisect_left(times, t0 - window))
    return delays, bursts
