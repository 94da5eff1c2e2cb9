"""The set-add workload: writers through redis-py's ``Sentinel`` add unique
elements to one set; afterwards, which acknowledged elements are missing.

Each writer thread has its own ``Sentinel`` and ``master_for(...)`` client, so
the address its connection uses is the last one its Sentinel handed out
(``_Writer.sentinel.last``): that tells which server acknowledged a write.
An element is *acknowledged* when SADD returned a reply; with ``wait`` the
SADD is pipelined with ``WAIT 1 wait_ms`` and it also counts as
*replica-acknowledged* when WAIT answered 1 or more. An error (refused,
READONLY, NOREPLICAS, timeout) leaves the element unacknowledged: it may or
may not be in the set, and is never counted as lost.

``translate`` maps a port Sentinel names to the port a writer really dials:
half the writers (the odd ones) can be given a map that bypasses the proxies,
i.e. clients that stay on the old primary's side of a partition.
"""

from __future__ import annotations

import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

KEY = "jepsen-set"


class TranslatingSentinel(Sentinel):
    """A ``Sentinel`` that remembers the last primary address it handed out,
    after mapping its port through ``translate``."""

    def __init__(self, addrs, translate: dict[int, int] | None = None, **kw):
        super().__init__(addrs, **kw)
        self.translate = translate or {}
        self.last: tuple[str, int] | None = None

    def discover_master(self, service_name):
        host, port = super().discover_master(service_name)
        self.last = (host, self.translate.get(port, port))
        return self.last


class _Writer(threading.Thread):
    def __init__(self, work: "SetAdd", index: int, translate):
        super().__init__(name=f"writer-{index}", daemon=True)
        self.work = work
        self.index = index
        self.sentinel = TranslatingSentinel(work.sentinels, translate, socket_timeout=0.5,
                                            socket_connect_timeout=0.5)
        self.client = self.sentinel.master_for(
            work.service, socket_timeout=work.timeout, socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0))
        # (monotonic time, element, port that acknowledged, replica-acked)
        self.acks: list[tuple[float, str, int, bool]] = []
        self.errors = 0

    def run(self) -> None:
        n = 0
        w = self.work
        while not w.stopping.is_set():
            elem = f"{self.index}-{n}"
            n += 1
            try:
                if w.wait_ms is None:
                    self.client.sadd(KEY, elem)
                    replicated = False
                else:
                    pipe = self.client.pipeline(transaction=False)
                    pipe.sadd(KEY, elem)
                    pipe.execute_command("WAIT", 1, w.wait_ms)
                    _, got = pipe.execute()
                    replicated = got >= 1
                port = self.sentinel.last[1] if self.sentinel.last else 0
                self.acks.append((time.monotonic(), elem, port, replicated))
            except (redis.RedisError, OSError):
                self.errors += 1
                time.sleep(0.05)  # don't spin while no primary answers
        self.client.close()


class SetAdd:
    """``writers`` threads adding unique elements to ``KEY`` until ``stop()``."""

    def __init__(self, sentinels: list[tuple[str, int]], writers: int = 10, service: str = "mymaster",
                 timeout: float = 1.0, wait_ms: int | None = None,
                 translate_odd: dict[int, int] | None = None):
        self.sentinels = sentinels
        self.service = service
        self.timeout = timeout
        self.wait_ms = wait_ms
        self.stopping = threading.Event()
        self.writers = [_Writer(self, i, translate_odd if i % 2 else None) for i in range(writers)]

    def start(self) -> "SetAdd":
        for w in self.writers:
            w.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for w in self.writers:
            w.join(self.timeout + 5)

    def acks(self) -> list[tuple[float, str, int, bool]]:
        return sorted(a for w in self.writers for a in w.acks)

    def errors(self) -> int:
        return sum(w.errors for w in self.writers)

    def check(self, final: set[bytes], fault_at: float, faulted_ports: set[int]) -> dict:
        """What the final set says about the history: acknowledged, lost, and the
        seconds from ``fault_at`` to the first write acknowledged by a server
        other than the faulted one (whose ``faulted_ports`` are its addresses)."""
        acks = self.acks()
        acked = {e for _, e, _, _ in acks}
        replicated = {e for _, e, _, r in acks if r}
        got = {e.decode() for e in final}
        resumed = next((t for t, _, p, _ in acks if t > fault_at and p not in faulted_ports), None)
        return {
            "acked": len(acked),
            "lost": len(acked - got),
            "replica_acked": len(replicated),
            "replica_acked_lost": len(replicated - got),
            "errors": self.errors(),
            "resume_s": None if resumed is None else resumed - fault_at,
            "acked_before_fault": sum(1 for t, *_ in acks if t <= fault_at),
        }
