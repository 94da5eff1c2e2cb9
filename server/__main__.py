"""``keel-server [config-file] [--directive value ...]`` (also ``python -m server``)."""

from __future__ import annotations

import sys

from server.config import Config, ConfigError


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-v", "--version"):
        from server.app import KEEL_VERSION, REDIS_VERSION
        print(f"Keel server v={KEEL_VERSION} (redis-compatible {REDIS_VERSION})")
        return 0
    if args and args[0] in ("-h", "--help"):
        print("Usage: keel-server [/path/to/keel.conf] [--port 6379] [--dir ./data] [--<directive> <value> ...]")
        return 0
    config = Config()
    try:
        config.load_args(args)
    except (ConfigError, OSError) as e:
        print(f"\n*** FATAL CONFIG FILE ERROR ***\n{e}", file=sys.stderr)
        return 1
    from server.app import run
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
