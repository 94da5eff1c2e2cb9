"""The engine: the keyspace, every data type and every command's semantics.

Pure: no sockets, no asyncio, no files. The server hands a handler a session
and an argv; the handler mutates the keyspace, records its effects, and
returns a reply value.

errors.py     every error text, in Redis's words
reply.py      reply value types (encoded to RESP by server.resp)
registry.py   @command / @subcommand: the one command table
keyspecs.py   key specifications: where a command's keys are, how it uses them
keyspace.py   databases, values, expiry (lazy + active), effects
session.py    what a handler sees of its client
util.py       Redis's number syntax and formatting, glob matching
rdb.py        one value in RDB encoding (DUMP/RESTORE, checkpoints)
rdbfile.py    whole RDB files (full sync, dump.rdb); its parse_file maps
              the one file it is given, the engine's only file access
types/        data structures (later: list, hash, set, zset, …)
commands/     handlers, one module per command group
"""
