"""Every error text a command can reply with, in Redis's words.

Clients match on these strings (redis-py maps the first word to an exception
class), so they are kept byte-for-byte as Redis sends them. A handler raises
``CommandError(TEXT)``; the server encodes it as ``-TEXT\\r\\n``. Nothing here
is ever built from user input except where the text itself says so (the
command name in arity errors, an unknown subcommand).

Internal failures (a corrupt log, a failed fsync) are *not* CommandErrors:
they have their own exception types in their own packages so that they can
never become a reply by accident.
"""


class CommandError(Exception):
    """A reply-level error: ``str(e)`` is the wire text without ``-`` and CRLF."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    @property
    def prefix(self) -> str:
        """The error code (first word), as counted by INFO errorstats."""
        return self.text.split(" ", 1)[0]


# --- generic ---------------------------------------------------------------
SYNTAX = "ERR syntax error"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
OVERFLOW = "ERR increment or decrement would overflow"
NAN_OR_INF = "ERR increment would produce NaN or Infinity"
NO_SUCH_KEY = "ERR no such key"
INVALID_DB = "ERR DB index is out of range"
SAME_OBJECT = "ERR source and destination objects are the same"
INVALID_EXPIRE = "ERR invalid expire time in '{}' command"
BIT_OFFSET = "ERR bit offset is not an integer or out of range"
BIT_VALUE = "ERR bit is not an integer or out of range"
STRING_TOO_LONG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
OFFSET_OUT_OF_RANGE = "ERR offset is out of range"
INVALID_CURSOR = "ERR invalid cursor"
BUSYKEY = "BUSYKEY Target key name already exists."
NEGATIVE_TIMEOUT = "ERR timeout is negative"

# --- keys, expiry and databases (DEL … SCAN, OBJECT, EXPIRE family, SWAPDB) --
NOT_INT32 = "ERR value is out of range, value must between -2147483648 and 2147483647"
INVALID_FIRST_DB = "ERR invalid first DB index"
INVALID_SECOND_DB = "ERR invalid second DB index"
UNSUPPORTED_OPTION = "ERR Unsupported option {}"
EXPIRE_NX_AND_OTHERS = "ERR NX and XX, GT or LT options at the same time are not compatible"
EXPIRE_GT_AND_LT = "ERR GT and LT options at the same time are not compatible"
LFU_NOT_SELECTED = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
    "that when switching between policies at runtime LRU and LFU data will take some time to adjust."
)
LFU_SELECTED = (
    "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note "
    "that when switching between policies at runtime LRU and LFU data will take some time to adjust."
)

# --- strings and bitmaps -----------------------------------------------------
DECREMENT_OVERFLOW = "ERR decrement would overflow"
LCS_NOT_STRINGS = "ERR The specified keys must contain string values"
LCS_LEN_AND_IDX = "ERR If you want both the length and indexes, please just use IDX."
LCS_TOO_BIG = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
BITPOS_BIT = "ERR The bit argument must be 1 or 0."
BITOP_NOT_ONE_KEY = "ERR BITOP NOT must be called with a single source key."
BITFIELD_TYPE = (
    "ERR Invalid bitfield type. Use something like i16 u8. "
    "Note that u64 is not supported but i64 is."
)
BITFIELD_OVERFLOW_TYPE = "ERR Invalid OVERFLOW type specified"
BITFIELD_RO_WRITE = "ERR BITFIELD_RO only supports the GET subcommand"

# --- hashes ------------------------------------------------------------------
HASH_VALUE_NOT_INTEGER = "ERR hash value is not an integer"
HASH_VALUE_NOT_FLOAT = "ERR hash value is not a float"
INCREMENT_NAN_OR_INF = "ERR value is NaN or Infinity"
# HRANDFIELD's count (also what SRANDMEMBER and ZRANDMEMBER say of theirs).
COUNT_OUT_OF_RANGE = "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
# HRANDFIELD ... WITHVALUES with a count beyond +-LONG_MAX/2 (the reply would be twice as long).
VALUE_OUT_OF_RANGE = "ERR value is out of range"

# --- sets (the SINTERCARD texts are ZINTERCARD's too) -------------------------
MUST_BE_POSITIVE = "ERR value is out of range, must be positive"
NUMKEYS_NOT_POSITIVE = "ERR numkeys should be greater than 0"
NUMKEYS_TOO_MANY = "ERR Number of keys can't be greater than number of args"
LIMIT_NEGATIVE = "ERR LIMIT can't be negative"

# --- sorted sets (ZINTERCARD's texts are in the sets section) ----------------
ZADD_NX_XX = "ERR XX and NX options at the same time are not compatible"
ZADD_GT_LT_NX = "ERR GT, LT, and/or NX options at the same time are not compatible"
ZADD_INCR_PAIR = "ERR INCR option supports a single increment-element pair"
ZSET_NAN = "ERR resulting score is not a number (NaN)"
ZSET_MINMAX_NOT_FLOAT = "ERR min or max is not a float"
ZSET_LEX_RANGE = "ERR min or max not valid string range item"
ZRANGE_LIMIT_NEEDS_BY = "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
ZRANGE_BYLEX_WITHSCORES = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
ZSET_NEED_ONE_KEY = "ERR at least 1 input key is needed for '{}' command"
ZSET_WEIGHT_NOT_FLOAT = "ERR weight value is not a float"
ZMPOP_COUNT_NOT_POSITIVE = "ERR count should be greater than 0"

# --- lists ---------------------------------------------------------------------
INDEX_OUT_OF_RANGE = "ERR index out of range"
COUNT_NOT_POSITIVE = "ERR count should be greater than 0"
LPOS_RANK_ZERO = (
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)
LPOS_COUNT_NEGATIVE = "ERR COUNT can't be negative"
LPOS_MAXLEN_NEGATIVE = "ERR MAXLEN can't be negative"

# --- blocking commands (BLPOP ... BZMPOP, CLIENT UNBLOCK) ---------------------
TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
TIMEOUT_OUT_OF_RANGE = "ERR timeout is out of range"
UNBLOCKED = "UNBLOCKED client unblocked via CLIENT UNBLOCK"
CLIENT_UNBLOCK_REASON = "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
CLIENT_PAUSE_MODE = "ERR CLIENT PAUSE mode must be WRITE or ALL"
TIMEOUT_NOT_INTEGER = "ERR timeout is not an integer or out of range"

# --- SORT / SORT_RO -----------------------------------------------------------
SORT_NOT_DOUBLE = "ERR One or more scores can't be converted into double"

# --- dispatch --------------------------------------------------------------
UNKNOWN_COMMAND = "ERR unknown command '{}', with args beginning with: {}"
WRONG_ARITY = "ERR wrong number of arguments for '{}' command"
UNKNOWN_SUBCOMMAND = "ERR unknown subcommand '{}'. Try {} HELP."
SUBCOMMAND_SYNTAX = "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP."
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
AUTH_NOT_CONFIGURED = (
    "ERR AUTH <password> called without any password configured for the "
    "default user. Are you sure your configuration is correct?"
)
OOM = "OOM command not allowed when used memory > 'maxmemory'."
READONLY = "READONLY You can't write against a read only replica."
MASTERDOWN = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
LOADING = "LOADING Redis is loading the dataset in memory"
MAX_CLIENTS = "ERR max number of clients reached"
NOPROTO = "NOPROTO unsupported protocol version"

# --- protocol (the connection is closed after these) -----------------------
PROTO_INVALID_BULK_LENGTH = "ERR Protocol error: invalid bulk length"
PROTO_INVALID_MULTIBULK_LENGTH = "ERR Protocol error: invalid multibulk length"
PROTO_EXPECTED_DOLLAR = "ERR Protocol error: expected '$', got '{}'"
PROTO_UNBALANCED_QUOTES = "ERR Protocol error: unbalanced quotes in request"
PROTO_TOO_BIG_INLINE = "ERR Protocol error: too big inline request"
PROTO_TOO_BIG_MBULK = "ERR Protocol error: too big mbulk count string"
PROTO_TOO_BIG_BULK = "ERR Protocol error: too big bulk count string"
PROTO_UNAUTH_MULTIBULK_LENGTH = "ERR Protocol error: unauthenticated multibulk length"
PROTO_UNAUTH_BULK_LENGTH = "ERR Protocol error: unauthenticated bulk length"

# --- connection and server (PING … HELLO, CLIENT, CONFIG, COMMAND, INFO, DEBUG)
HELLO_PROTO_NOT_INT = "ERR Protocol version is not an integer or out of range"
HELLO_BAD_OPTION = "ERR Syntax error in HELLO option '{}'"
HELLO_NOAUTH = (
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
    "the RESP protocol version at the same time"
)
CLIENT_NAME_INVALID = "ERR Client names cannot contain spaces, newlines or special characters."
CLIENT_ATTR_INVALID = "ERR {} cannot contain spaces, newlines or special characters."
CLIENT_ATTR_UNKNOWN = "ERR Unrecognized option '{}'"
CLIENT_TYPE_UNKNOWN = "ERR Unknown client type '{}'"
CLIENT_ID_INVALID = "ERR Invalid client ID"
CLIENT_ID_NOT_POSITIVE = "ERR client-id should be greater than 0"
NO_SUCH_CLIENT = "ERR No such client"
NO_SUCH_USER = "ERR No such user '{}'"
CONFIG_SET_UNKNOWN = "ERR Unknown option or number of arguments for CONFIG SET - '{}'"
CONFIG_SET_FAILED = "ERR CONFIG SET failed (possibly related to argument '{}') - {}"
CONFIG_NO_FILE = "ERR The server is running without a config file"
CONFIG_REWRITE_FAILED = "ERR Rewriting config file: {}"
GETKEYS_INVALID_COMMAND = "ERR Invalid command specified"
GETKEYS_INVALID_ARITY = "ERR Invalid number of arguments specified for command"
GETKEYS_NO_KEYS = "ERR The command has no key arguments"
GETKEYS_INVALID_ARGUMENTS = "ERR Invalid arguments specified for command"
DEBUG_UNKNOWN = "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP."
DEBUG_NOT_ALLOWED = (
    "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", "
    "you can run it from a local connection, otherwise you need to set this option in the "
    "configuration file, and then restart the server."
)
NO_SHUTDOWN_IN_PROGRESS = "ERR No shutdown in progress."

# --- DUMP / RESTORE ----------------------------------------------------------
RESTORE_BAD_TTL = "ERR Invalid TTL value, must be >= 0"
RESTORE_BAD_IDLETIME = "ERR Invalid IDLETIME value, must be >= 0"
RESTORE_BAD_FREQ = "ERR Invalid FREQ value, must be >= 0 and <= 255"
DUMP_PAYLOAD_VERSION = "ERR DUMP payload version or checksum are wrong"
DUMP_PAYLOAD_BAD_DATA = "ERR Bad data format"

# --- persistence -------------------------------------------------------------
BGSAVE_IN_PROGRESS = "ERR Background save already in progress"
NO_CHECKPOINTER = "ERR the dataset is still loading; no checkpoint can be taken yet"

# Transactions and pub/sub (server.multi, server.pubsub).
SUBSCRIBED_CONTEXT = ("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
                      "are allowed in this context")
EXECABORT = "EXECABORT Transaction discarded because of previous errors."
MULTI_NESTED = "ERR MULTI calls can not be nested"
EXEC_WITHOUT_MULTI = "ERR EXEC without MULTI"
DISCARD_WITHOUT_MULTI = "ERR DISCARD without MULTI"
WATCH_IN_MULTI = "ERR WATCH inside MULTI is not allowed"

# --- client-side caching (CLIENT TRACKING / CACHING) --------------------------
TRACKING_REDIRECT_TWICE = "ERR A client can only redirect to a single other client"
TRACKING_REDIRECT_MISSING = "ERR The client ID you want redirect to does not exist"
TRACKING_PREFIX_NEEDS_BCAST = "ERR PREFIX option requires BCAST mode to be enabled"
TRACKING_BCAST_SWITCH = ("ERR You can't switch BCAST mode on/off before disabling tracking for this client, "
                         "and then re-enabling it with a different mode.")
TRACKING_BCAST_OPTS = "ERR OPTIN and OPTOUT are not compatible with BCAST"
TRACKING_OPTIN_OPTOUT = "ERR You can't specify both OPTIN mode and OPTOUT mode"
TRACKING_OPT_SWITCH = ("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, "
                       "and then re-enabling it with a different mode.")
TRACKING_PREFIX_OVERLAPS_EXISTING = ("ERR Prefix '{}' overlaps with an existing prefix '{}'. "
                                     "Prefixes for a single client must not overlap.")
TRACKING_PREFIX_OVERLAPS_GIVEN = ("ERR Prefix '{}' overlaps with another provided prefix '{}'. "
                                  "Prefixes for a single client must not overlap.")
CACHING_NOT_TRACKING = ("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN "
                        "or OPTOUT mode enabled")
CACHING_YES_NOT_OPTIN = "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
CACHING_NO_NOT_OPTOUT = "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."

# --- scripting (EVAL, SCRIPT, FUNCTION, FCALL; server/scripting) -----------------
NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
NUMKEYS_NEGATIVE = "ERR Number of keys can't be negative"
NUMKEYS_TOO_MANY = "ERR Number of keys can't be greater than number of args"
SCRIPT_COMPILE = "ERR Error compiling script (new function): {}"
SCRIPT_FAILED = "{} script: {}, on @{}:{}."
SCRIPT_UNKNOWN_COMMAND = "ERR Unknown Redis command called from script"
SCRIPT_WRONG_ARITY = "ERR Wrong number of args calling Redis command from script"
SCRIPT_NOT_ALLOWED = "ERR This Redis command is not allowed from script"
SCRIPT_WRITE_READONLY = "ERR Write commands are not allowed from read-only scripts."
SCRIPT_WRITE_FLAG_RO = "ERR Can not execute a script with write flag using *_ro command."
SHEBANG_ENGINE = "ERR Unexpected engine in script shebang: {}"
SHEBANG_OPTION = "ERR Unknown lua shebang option: {}"
SHEBANG_FLAG = "ERR Unexpected flag in script shebang: {}"
SHEBANG_INVALID = "ERR Invalid script shebang"
SCRIPT_FLUSH_MODE = "ERR SCRIPT FLUSH only support SYNC|ASYNC option"
SCRIPT_OOM = "ERR Out of memory in the Lua interpreter while running the script: {}"
NOTBUSY = "NOTBUSY No scripts in execution right now."
BUSY_SCRIPT = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
BUSY_FUNCTION = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
UNKILLABLE = ("UNKILLABLE Sorry the script already executed write commands against the dataset. "
              "You can either wait the script termination or kill the server in a hard way using "
              "the SHUTDOWN NOSAVE command.")
SCRIPT_KILLED = "ERR Script killed by user with SCRIPT KILL..."
SCRIPT_SHUTDOWN = "ERR Script killed by user with SHUTDOWN NOSAVE..."
NOT_IN_MULTI = "ERR Command not allowed inside a transaction"
