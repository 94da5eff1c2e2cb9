"""MODULE: Keel loads no modules, and says so the way Redis does.

Redis modules are shared objects written against Redis's C API; Keel has
no such API, so nothing can be loaded. The command is in the table all the
same, with Redis 7's arities, flags and ACL categories, so that clients
that ask (redis-py's ``module_list``, exporters, ACL rules naming
``module|list``) get Redis's answers:

* MODULE LIST: an empty list, as a Redis with no module loaded answers.
* MODULE LOAD / LOADEX / UNLOAD: refused unless ``enable-module-command``
  allows the client (Redis's words); when allowed, LOAD and LOADEX fail as a
  Redis fails to load a missing file, and UNLOAD finds no such module.
"""

from __future__ import annotations

import logging

from engine.errors import CommandError
from engine.registry import command, dispatch_subcommand, subcommand
from engine.reply import help_lines
from server.commands.config import enabled_for

log = logging.getLogger("keel.module")

NOT_ALLOWED = ('ERR MODULE command not allowed. If the enable-module-command option is set to "local", '
               "you can run it from a local connection, otherwise you need to set this option in the "
               "configuration file, and then restart the server.")
LOAD_FAILED = "ERR Error loading the extension. Please check the server logs."
NO_SUCH_MODULE = "ERR Error unloading module: no such module with that name"

_ADMIN = "admin noscript no_async_loading"
_ADMIN_ACL = "@admin @slow @dangerous"


@command("module", -2, "", acl="@slow", group="server", since="4.0.0", fast_path=False)
def module(c, argv):
    """MODULE subcommand [arg ...] -- list, load and unload modules (Keel has none)."""
    return dispatch_subcommand(module.command, c, argv)


@subcommand("module", "list", 2, "admin noscript", acl=_ADMIN_ACL, since="4.0.0",
            tips="nondeterministic_output_order")
def module_list(c, argv):
    """MODULE LIST -- the loaded modules: none. O(1)."""
    return []


def _allowed(c) -> None:
    if not enabled_for(c, "enable-module-command"):
        raise CommandError(NOT_ALLOWED)


@subcommand("module", "load", -3, _ADMIN, acl=_ADMIN_ACL, since="4.0.0")
def module_load(c, argv):
    """MODULE LOAD path [arg ...] -- load a module: Keel cannot. O(1)."""
    _allowed(c)
    log.warning("Module %s failed to load: Keel has no module API", argv[2].decode("utf-8", "replace"))
    raise CommandError(LOAD_FAILED)


@subcommand("module", "loadex", -3, _ADMIN, acl=_ADMIN_ACL, since="7.0.0")
def module_loadex(c, argv):
    """MODULE LOADEX path [CONFIG name value ...] [ARGS arg ...] -- load a module: Keel cannot. O(1)."""
    _allowed(c)
    log.warning("Module %s failed to load: Keel has no module API", argv[2].decode("utf-8", "replace"))
    raise CommandError(LOAD_FAILED)


@subcommand("module", "unload", 3, _ADMIN, acl=_ADMIN_ACL, since="4.0.0")
def module_unload(c, argv):
    """MODULE UNLOAD name -- unload a module: none is loaded. O(1)."""
    _allowed(c)
    raise CommandError(NO_SUCH_MODULE)


@subcommand("module", "help", 2, "loading stale", acl="@slow", since="5.0.0")
def module_help(c, argv):
    """MODULE HELP -- the MODULE subcommands. O(1)."""
    return help_lines("MODULE", [
        "LIST", "    The modules loaded (Keel loads none: an empty list).",
        "LOAD <path> [<arg> ...]", "    Load the module at <path> with these arguments (Keel cannot: an error).",
        "LOADEX <path> [CONFIG <name> <value> ...] [ARGS <arg> ...]",
        "    LOAD with module configuration values (Keel cannot: an error).",
        "UNLOAD <name>", "    Unload the module called <name> (none is loaded: an error).",
    ])
