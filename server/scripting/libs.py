"""The libraries Redis loads into its Lua states besides Lua's own: cjson,
cmsgpack, bit and struct (not yet: step 2)."""


def install(vm) -> None:
    return None
