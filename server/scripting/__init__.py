"""Lua scripting: EVAL and FUNCTION, with Lua 5.1 (lupa), as in Redis 7.

vm        one Lua state set up as Redis sets up its own: the ``redis`` table,
          the sandbox, the conversions between replies and Lua values
prelude   (prelude.lua) the Lua side of a state, run when it is made
runner    ``Scripting`` (``ks.scripting``): the script cache, the libraries,
          the script running now; ``redis.call``'s checks; a script's effects
libs      bit and cjson, as Redis ships them
cmsgpack  cmsgpack (MessagePack), as Redis ships it
lstruct   struct (binary packing), as Redis ships it
clib      Lua C libraries' argument checks and error texts, for the two above
eval      EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT
function  FUNCTION LOAD|DELETE|FLUSH|LIST|DUMP|RESTORE|STATS|KILL, FCALL, FCALL_RO
busy      a script past busy-reply-threshold: -BUSY to the others, SCRIPT KILL,
          SHUTDOWN NOSAVE

A script runs on the event loop, like every command: nothing else touches
the keyspace while it runs. Past the threshold, the count hook answers other
clients from inside the script (``busy``); see that module for why.

Not yet: SCRIPT DEBUG.
"""

from server.scripting import eval, function  # noqa: F401  (registers the commands)
