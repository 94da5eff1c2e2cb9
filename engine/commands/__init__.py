"""Command handlers, one module per group; importing this registers them all.

string   strings and counters
string_range  GETRANGE/SUBSTR, SETRANGE, LCS
bitmap   bit operations on strings
keys     the generic key commands (DEL, EXISTS, RENAME, OBJECT, …)
scan     SCAN and RANDOMKEY, walking a database by position (engine.dictscan)
expiry   TTLs: EXPIRE and friends, TTL, PERSIST
db       database-wide commands (SELECT, DBSIZE, FLUSHDB, SWAPDB, …)
introspection  COMMAND and its subcommands, generated from the command table
dump     DUMP and RESTORE (payloads in engine.rdb)
"""

from engine.commands import bitmap, db, expiry, keys, scan, string, string_range  # noqa: F401
from engine.commands import introspection  # noqa: F401,E402
from engine.commands import dump  # noqa: F401,E402
