"""TLS against plain TCP on the same Keel, and the same for redis-server (same run).

One Keel process listens on a TCP port and a TLS port (certificates made with
the system's openssl for the run); so does one redis-server (the Debian
package is built with TLS). ``redis-benchmark -t set,get -c 50`` runs against
each port in turn (interleaved, ``--reps`` rounds, the median), servers pinned
to core 1 and the benchmark to core 0, and prints requests/s with the ratios
TLS/TCP — the issue's bar is Keel's TLS ≥ 0.7x its plain TCP. Usage:

    python bench/tls.py [--reps 3] [-n 100000] [-P 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Servers, pin_self, requests_per_second  # noqa: E402
from scale import code_state, redis_version  # noqa: E402
from tests.support import free_port  # noqa: E402


def make_certs(d: str) -> dict:
    def ossl(*a):
        subprocess.run(["openssl", *a], cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
         "-subj", "/CN=bench-ca")
    for name in ("server", "client"):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={name}")
        ossl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", "2")
    return {k: os.path.join(d, k) for k in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


def bench(port: int, tls: dict | None, n: int, pipeline: int) -> dict:
    cmd = ["redis-benchmark", "-p", str(port), "-t", "set,get", "-c", "50", "-n", str(n), "-P", str(pipeline),
           "-q", "--csv"]
    if tls:
        cmd += ["--tls", "--cacert", tls["ca.crt"], "--cert", tls["client.crt"], "--key", tls["client.key"]]
    return requests_per_second(cmd)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("-P", type=int, default=1)
    o = ap.parse_args()
    if not shutil.which("openssl") or not shutil.which("redis-benchmark"):
        print("needs openssl and redis-benchmark")
        return 2
    pin_self()
    print(f"keel: {code_state()}; redis: {redis_version()}; -c 50 -P {o.P}; client on core 0, servers on core 1")
    d = tempfile.mkdtemp(prefix="keel-tls-bench-")
    certs = make_certs(d)
    tls_args = ["--tls-cert-file", certs["server.crt"], "--tls-key-file", certs["server.key"],
                "--tls-ca-cert-file", certs["ca.crt"]]
    with Servers() as srv:
        kt, rt = free_port(), free_port()
        keel = srv.keel("--appendonly", "no", "--tls-port", str(kt), *tls_args)
        ref = srv.redis("--tls-port", str(rt), *tls_args)
        runs = {(s, m): [] for s in ("keel", "redis") for m in ("tcp", "tls")}
        for _ in range(o.reps):
            for name, proc, tport in (("keel", keel, kt), ("redis", ref, rt)):
                runs[(name, "tcp")].append(bench(proc.port, None, o.n, o.P))
                runs[(name, "tls")].append(bench(tport, certs, o.n, o.P))
    shutil.rmtree(d, ignore_errors=True)
    for test in ("SET", "GET"):
        med = {k: statistics.median(r[test] for r in v) for k, v in runs.items()}
        print(f"{test}: keel tcp {med[('keel', 'tcp')]:,.0f} tls {med[('keel', 'tls')]:,.0f} "
              f"(tls/tcp {med[('keel', 'tls')] / med[('keel', 'tcp')]:.2f}); "
              f"redis tcp {med[('redis', 'tcp')]:,.0f} tls {med[('redis', 'tls')]:,.0f} "
              f"(tls/tcp {med[('redis', 'tls')] / med[('redis', 'tcp')]:.2f}); "
              f"keel/redis over tls {med[('keel', 'tls')] / med[('redis', 'tls')]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
