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

Every module of this package is imported (in name order), so a new group
registers its commands by existing: its ``@command`` declarations are the
whole of its wiring.
"""

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
