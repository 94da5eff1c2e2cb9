"""Connection and server commands: those that need the server, not only the keyspace.

connection  PING, ECHO, QUIT, RESET, HELLO, AUTH
acl         ACL SETUSER|GETUSER|DELUSER|USERS|LIST|WHOAMI|CAT|GENPASS|LOG|DRYRUN|LOAD|SAVE|HELP
client      CLIENT ID|INFO|LIST|KILL|SETNAME|GETNAME|SETINFO|REPLY|HELP
config      CONFIG GET|SET|RESETSTAT|REWRITE|HELP
admin       INFO, TIME, DEBUG, SHUTDOWN
cluster     CLUSTER (every subcommand), READONLY, READWRITE, ASKING: refused, no cluster support; LOLWUT
debug       DEBUG OBJECT|RELOAD|DIGEST|DIGEST-VALUE|POPULATE|PROTOCOL|ERROR|LOG|LISTPACK|... (DEBUG's subcommands)
multi       MULTI, EXEC, DISCARD, WATCH, UNWATCH (in server/multi.py)
persistence SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE
pubsub      SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE,
            PUBLISH, SPUBLISH, PUBSUB CHANNELS|NUMSUB|NUMPAT|SHARDCHANNELS|SHARDNUMSUB|HELP
tracking    CLIENT TRACKING|CACHING|GETREDIR|TRACKINGINFO (client-side caching)
scripting   EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FUNCTION, FCALL, FCALL_RO (in server/scripting/)

Handlers here receive a ``server.client.Client`` (``c.server`` is the
``server.app.Server``). COMMAND lives in ``engine.commands.introspection``:
it needs only the command table.
"""

from server.commands import acl, admin, client, config, connection, persistence, pubsub, tracking  # noqa: F401
from server.commands import debug  # noqa: F401,E402  (DEBUG's subcommands)
from server.commands import cluster  # noqa: F401,E402  (CLUSTER & co. without cluster support; LOLWUT)
from server import multi  # noqa: F401,E402  (MULTI, EXEC, DISCARD, WATCH, UNWATCH)
from server import scripting  # noqa: F401,E402  (EVAL, SCRIPT, FUNCTION, FCALL)
from server.commands import introspect  # noqa: F401,E402  (MONITOR, SLOWLOG, LATENCY)
from server.commands import memory  # noqa: F401,E402  (MEMORY)
from server.commands import module  # noqa: F401,E402  (MODULE: none loaded)
from server import eviction  # noqa: F401,E402  (CLIENT NO-TOUCH)
from server import client_limits  # noqa: F401,E402  (CLIENT NO-EVICT)
from server.commands import replication  # noqa: F401,E402  (REPLICAOF, ROLE, PSYNC, WAIT, …)
