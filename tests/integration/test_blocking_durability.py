"""A job queue on blocking pops, with redis-py as the application uses it:
every job is taken exactly once, and what a served worker was acknowledged
survives kill -9 (the served LMOVE was journaled and fsynced before its reply)."""

from __future__ import annotations

import signal
import threading

from tests.support import KeelProcess


def test_workers_take_every_job_exactly_once(keel):
    producer = keel.redis()
    producer.delete("jobs")
    taken: list = []
    lock = threading.Lock()

    def worker():
        r = keel.redis()
        while True:
            got = r.brpop(["jobs"], timeout=0.5)
            if got is None:
                return
            with lock:
                taken.append(got[1])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for n in range(300):
        producer.lpush("jobs", n)
    for t in threads:
        t.join(10)
    assert sorted(int(j) for j in taken) == list(range(300))
    assert producer.exists("jobs") == 0


def test_jobs_a_served_worker_was_given_survive_kill_9():
    proc = KeelProcess("--appendfsync", "always").start()
    try:
        r = proc.redis()
        acked = []
        for n in range(20):
            waiter = proc.redis()
            result: list = []
            t = threading.Thread(target=lambda: result.append(
                waiter.blmove("jobs", "processing", 5, "RIGHT", "LEFT")))
            t.start()
            while int(r.info("clients")["blocked_clients"]) != 1:
                pass
            r.lpush("jobs", f"job-{n}")
            t.join(5)
            acked.append(result[0])
            waiter.close()
        r.lpush("jobs", "queued-1", "queued-2")
        proc.stop(signal.SIGKILL)
        proc.start()
        r = proc.redis()
        assert acked == [f"job-{n}".encode() for n in range(20)]
        assert r.lrange("processing", 0, -1) == list(reversed(acked))
        assert r.lrange("jobs", 0, -1) == [b"queued-2", b"queued-1"]
    finally:
        proc.cleanup()
