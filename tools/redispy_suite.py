"""Run redis-py's own test suite against Keel (a developer tool, not a test).

redis-py's tests (from its sdist: ``pip download --no-binary :all: --no-deps
redis==8.1.0``) are written against a real Redis; pointed at Keel with
``--redis-url`` they find where Keel's replies differ. This tool starts a Keel
server on a free port with a temporary ``--dir`` (or, with ``--redis``, a real
``redis-server`` to compare with: its failures are not Keel's), runs each test
file in its own pytest process and prints, per file, how many tests passed,
failed and were skipped, then the ids of the failing tests with the first line
of each error.

Keel reports ``redis_version:7.2.0``, so redis-py's own version markers skip
the tests for newer servers. Tests for modules, cluster, TLS, replicas and
Sentinel are deselected by marker or file (they need servers this tool does
not start).

The tests need pytest, pytest-asyncio and pytest-timeout next to redis-py,
which Keel's venv does not carry; give a Python that has them with
``--python`` (or ``REDISPY_PYTHON``), for example a venv made with
``python -m venv /tmp/redispy/venv && /tmp/redispy/venv/bin/pip install
/tmp/redispy/redis-8.1.0 hiredis pytest pytest-asyncio pytest-timeout``.

    python tools/redispy_suite.py --sdist /tmp/redispy/redis-8.1.0 \\
        --python /tmp/redispy/venv/bin/python [--redis] [--protocol 2] \\
        [-k EXPR] [FILE ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.support import KeelProcess, RedisProcess  # noqa: E402

FILES = [
    "tests/test_commands.py",
    "tests/test_hash.py",
    "tests/test_pipeline.py",
    "tests/test_pubsub.py",
    "tests/test_scripting.py",
    "tests/test_function.py",
    "tests/test_lock.py",
    "tests/test_monitor.py",
    "tests/test_connection.py",
    "tests/test_connection_pool.py",
    "tests/test_client.py",
    "tests/test_command_parser.py",
    "tests/test_encoding.py",
    "tests/test_keyspace_notifications.py",
    "tests/test_multiprocessing.py",
    "tests/test_retry.py",
    "tests/test_asyncio/test_commands.py",
    "tests/test_asyncio/test_hash.py",
    "tests/test_asyncio/test_pipeline.py",
    "tests/test_asyncio/test_pubsub.py",
    "tests/test_asyncio/test_scripting.py",
    "tests/test_asyncio/test_lock.py",
    "tests/test_asyncio/test_monitor.py",
    "tests/test_asyncio/test_connection.py",
    "tests/test_asyncio/test_connection_pool.py",
    "tests/test_asyncio/test_client.py",
    "tests/test_asyncio/test_encoding.py",
    "tests/test_asyncio/test_keyspace_notifications.py",
]

# Markers for servers this tool does not start (see redis-py's pyproject.toml).
DESELECT = ("not onlycluster and not redismod and not ssl and not replica"
            " and not cp_integration and not multidb_integration and not experimental")


def find_sdist(path: str) -> str:
    """The unpacked sdist directory (unpacking a .tar.gz under /tmp first)."""
    if os.path.isdir(path):
        return path
    dest = tempfile.mkdtemp(prefix="redispy-")
    with tarfile.open(path) as tar:
        tar.extractall(dest, filter="data")
    (name,) = os.listdir(dest)
    return os.path.join(dest, name)


def start_server(use_redis: bool, extra: list[str], port: int):
    if use_redis:
        server = RedisProcess(*extra)
        if port:
            server.port = port
        return server.start()
    return KeelProcess(*extra, port=port or None).start()


def parse_junit(path: str, skips: dict[str, int], times: list[tuple[float, str]]):
    """(counts, failures) of one junit report; skip reasons and test times added to the others.

    A test that failed and then failed its teardown appears twice in the
    report: it is counted once, with both messages."""
    outcome: dict[str, str] = {}
    failures: list[tuple[str, str]] = []
    if os.path.exists(path):
        for case in ET.parse(path).getroot().iter("testcase"):
            tid = f"{case.get('classname', '')}::{case.get('name', '')}"
            times.append((float(case.get("time") or 0), tid))
            bad = case.find("failure")
            if bad is None:
                bad = case.find("error")
            skipped = case.find("skipped")
            if bad is not None:
                outcome[tid] = "failed"
                failures.append((tid, (bad.get("message") or "").split("\n")[0][:200]))
            elif skipped is not None:
                outcome.setdefault(tid, "skipped")
                reason = skipped.get("message") or ""
                skips[reason] = skips.get(reason, 0) + 1
            else:
                outcome.setdefault(tid, "passed")
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for state in outcome.values():
        counts[state] += 1
    return counts, failures


def run_file(python: str, sdist: str, test_file: str, url: str, args, skips, times):
    fd, junit = tempfile.mkstemp(prefix="redispy-", suffix=".xml")
    os.close(fd)
    os.unlink(junit)  # (pytest writes it; its absence afterwards means pytest died first)
    cmd = [python, "-m", "pytest", test_file, "-q", "-p", "no:cacheprovider",
           f"--redis-url={url}", f"--redis-mod-url={url}", "-m", DESELECT,
           f"--junitxml={junit}", f"--timeout={args.timeout}"]
    if args.protocol:
        cmd.append(f"--protocol={args.protocol}")
    if args.legacy_responses:
        cmd.append(f"--legacy-responses={args.legacy_responses}")
    if args.k:
        cmd += ["-k", args.k]
    t0 = time.monotonic()
    out = subprocess.run(cmd, cwd=sdist, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    elapsed = time.monotonic() - t0
    if args.verbose:
        print(out.stdout)
    counts, failures = parse_junit(junit, skips, times)
    if not os.path.exists(junit):
        failures.append((test_file, "pytest produced no report: " + out.stdout[-400:]))
    else:
        os.unlink(junit)
    return counts, failures, elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="test files relative to the sdist (default: a set)")
    ap.add_argument("--sdist", default="/tmp/redispy/redis-8.1.0",
                    help="redis-py's unpacked sdist or its .tar.gz")
    ap.add_argument("--python", default=os.environ.get("REDISPY_PYTHON", sys.executable),
                    help="a Python with redis-py, pytest, pytest-asyncio, pytest-timeout")
    ap.add_argument("--redis", action="store_true", help="run against a real redis-server")
    ap.add_argument("--port", type=int, default=0,
                    help="the server's port (default: a free one); a few tests connect to 6379 only")
    ap.add_argument("--protocol", default="", help="2 or 3 (default: redis-py's, RESP3)")
    ap.add_argument("--legacy-responses", default="",
                    help="true or false: redis-py's reply shapes (default: the client's)")
    ap.add_argument("-k", default="", help="pytest -k expression")
    ap.add_argument("--timeout", type=int, default=30, help="per-test timeout (s)")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra server arguments, e.g. --server-arg=--appendfsync --server-arg=no")
    ap.add_argument("-v", "--verbose", action="store_true", help="print pytest's output")
    ap.add_argument("--skips", action="store_true", help="print the skip reasons with counts")
    ap.add_argument("--slowest", type=int, default=0, help="print the N slowest tests")
    args = ap.parse_args()

    sdist = find_sdist(args.sdist)
    files = args.files or [f for f in FILES if os.path.exists(os.path.join(sdist, f))]
    server = start_server(args.redis, args.server_arg, args.port)
    url = f"redis://127.0.0.1:{server.port}/0"
    print(f"{'redis-server' if args.redis else 'Keel'} on {url}; redis-py tests from {sdist}")
    total = {"passed": 0, "failed": 0, "skipped": 0}
    all_failures: list[tuple[str, str]] = []
    skips: dict[str, int] = {}
    times: list[tuple[float, str]] = []
    try:
        for f in files:
            counts, failures, elapsed = run_file(args.python, sdist, f, url, args, skips, times)
            for k in total:
                total[k] += counts[k]
            all_failures += failures
            print(f"{f:48} passed {counts['passed']:4}  failed {counts['failed']:4}  "
                  f"skipped {counts['skipped']:4}  ({elapsed:.0f} s)", flush=True)
    finally:
        server.cleanup()
    print(f"{'total':48} passed {total['passed']:4}  failed {total['failed']:4}  "
          f"skipped {total['skipped']:4}")
    if args.skips:
        print("\nskip reasons:")
        for reason, n in sorted(skips.items(), key=lambda kv: -kv[1]):
            print(f"  {n:4}  {reason[:150]}")
    if args.slowest:
        print("\nslowest tests:")
        for t, tid in sorted(times, reverse=True)[:args.slowest]:
            print(f"  {t:6.1f} s  {tid}")
    if all_failures:
        print("\nfailing tests:")
        for tid, msg in all_failures:
            print(f"  {tid}\n      {msg}")
    return 1 if all_failures else 0


if __name__ == "__main__":
    sys.exit(main())
