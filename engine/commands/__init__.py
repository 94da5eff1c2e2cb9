"""Command handlers, one module per group; importing this registers them all.

string   strings, counters and bitmaps
keys     the generic key commands (DEL, EXISTS, RENAME, SCAN, OBJECT, …)
expiry   TTLs: EXPIRE and friends, TTL, PERSIST
db       database-wide commands (SELECT, DBSIZE, FLUSHDB, SWAPDB, …)
"""

from engine.commands import db, expiry, keys, string  # noqa: F401
