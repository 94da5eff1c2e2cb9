"""Build hook for Keel's C modules (engine/_dictscan.c: SCAN's dict walk;
engine/_geo.c: the inner loop of a geo search; engine/_hll.c: HyperLogLog
hashing and register updates; engine/_crc64.c: the CRC-64
of DUMP payloads and RDB files; server/_respc.c:
arrays of bulk strings encoded in one pass); everything else
about the package is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("engine._dictscan", ["engine/_dictscan.c"], extra_compile_args=["-O2"]),
    Extension("engine._geo", ["engine/_geo.c"], extra_compile_args=["-O2", "-ffp-contract=off"]),
    Extension("engine._hll", ["engine/_hll.c"], extra_compile_args=["-O2"]),
    Extension("engine._crc64", ["engine/_crc64.c"], extra_compile_args=["-O2"]),
    Extension("server._respc", ["server/_respc.c"], extra_compile_args=["-O2"]),
])
