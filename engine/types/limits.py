"""The encoding thresholds of the collection types, as directives set them.

Each ``Keyspace`` holds one ``Limits`` (``ks.limits``); the server copies the
directives named in ``DIRECTIVES`` into it at start and on CONFIG SET, and the
type classes read it when they decide whether a value still fits its compact
encoding. Defaults are Redis 7.2's.
"""

from __future__ import annotations


class Limits:
    __slots__ = ("list_max_listpack_size", "list_compress_depth",
                 "hash_max_listpack_entries", "hash_max_listpack_value",
                 "set_max_intset_entries", "set_max_listpack_entries", "set_max_listpack_value",
                 "zset_max_listpack_entries", "zset_max_listpack_value",
                 "stream_node_max_bytes", "stream_node_max_entries",
                 "hll_sparse_max_bytes")

    def __init__(self):
        # Negative: a listpack of at most -1 4 KB, -2 8 KB, -3 16 KB, -4 32 KB,
        # -5 64 KB; positive: of at most that many entries.
        self.list_max_listpack_size = -2
        self.list_compress_depth = 0
        self.hash_max_listpack_entries = 512
        self.hash_max_listpack_value = 64
        self.set_max_intset_entries = 512
        self.set_max_listpack_entries = 128
        self.set_max_listpack_value = 64
        self.zset_max_listpack_entries = 128
        self.zset_max_listpack_value = 64
        # A stream node (listpack) holds at most this many bytes / entries (0: no limit).
        self.stream_node_max_bytes = 4096
        self.stream_node_max_entries = 100
        # A sparse HyperLogLog grown past this many bytes (header included) turns dense.
        self.hll_sparse_max_bytes = 3000


# directive name -> Limits attribute
DIRECTIVES = {name.replace("_", "-"): name for name in Limits.__slots__}
