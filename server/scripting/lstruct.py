"""``struct``, the binary packing library Redis loads into Lua (Roberto
Ierusalimschy's struct 0.2 as Redis ships it), written for Keel:
``struct.pack(fmt, v1, …)``, ``struct.unpack(fmt, s [, pos])`` (the values,
then the position after them), ``struct.size(fmt)``.

The format, one letter at a time, as Redis's build on x86-64 reads it:

* ``b``/``B`` 1 byte, ``h``/``H`` 2, ``l``/``L`` and ``T`` 8, ``i``/``I`` 4
  or ``iN``/``IN`` N bytes (up to 32; lower case is signed when unpacking),
  ``f`` a float, ``d`` a double, ``x`` one zero byte, ``cN`` N bytes of a
  string (``c`` one, ``c0`` the whole string when packing, and when
  unpacking as many as the number read just before), ``s`` a string ending
  in a zero byte;
* ``<`` little-endian (the default), ``>`` big-endian, ``!N`` aligns each
  item to the smaller of its size and N (a power of two; ``!`` alone: 8),
  a space is ignored; anything else (``=`` too) is ``invalid format option``.

Integers are written from the number as C converts a double to a 64-bit
integer (truncated; out of range as x86 gives it) and bytes past the eighth
are zero; reading keeps the last 8 bytes and extends the sign as Redis's
build does. The errors are Redis's, in its words (``integral size overflow``,
``alignment 3 is not a power of 2``, ``data string too short``, ``string too
short``, ``unfinished string in data``, ``format 'c0' needs a previous
size``, ``stack overflow (too many results)``, …).

Known difference: ``-0.0`` reaches Python through lupa as the integer 0, so
``f`` and ``d`` write +0.0 for it where Redis writes -0.0.
"""

from __future__ import annotations

import ctypes
import struct

from server.scripting.clib import MAXCSTACK, CLib

_MASK64 = (1 << 64) - 1
_MAXINTSIZE = 32
_MAXALIGN = 8  # the alignment of a double after a char on x86-64
_INT_MAX = (1 << 31) - 1
_SIZES = {ord("b"): 1, ord("B"): 1, ord("h"): 2, ord("H"): 2, ord("l"): 8, ord("L"): 8, ord("T"): 8,
          ord("f"): 4, ord("d"): 8, ord("x"): 1}
_INTEGERS = frozenset(b"bBhHlLTiI")
_DIGITS = frozenset(b"0123456789")
_ALNUM = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_C, _S, _I, _U, _F, _D, _X = (ord(x) for x in "csiIfdx")
_FLOAT = {False: struct.Struct("<f"), True: struct.Struct(">f")}
_DOUBLE = {False: struct.Struct("<d"), True: struct.Struct(">d")}


class _Format:
    """A format string being read, with the options set so far."""

    __slots__ = ("fmt", "i", "big", "align", "clib")

    def __init__(self, fmt: bytes, clib: CLib):
        nul = fmt.find(b"\0")  # C reads the format up to its first zero byte
        self.fmt = fmt if nul < 0 else fmt[:nul]
        self.i = 0
        self.big = False
        self.align = 1
        self.clib = clib

    def number(self, default: int) -> int:
        fmt = self.fmt
        i = self.i
        if i >= len(fmt) or fmt[i] not in _DIGITS:
            return default
        a = 0
        while i < len(fmt) and fmt[i] in _DIGITS:
            d = fmt[i] - 48
            if a > _INT_MAX // 10 or a * 10 > _INT_MAX - d:
                raise self.clib.error("integral size overflow")
            a = a * 10 + d
            i += 1
        self.i = i
        return a

    def size(self, opt: int) -> int:
        size = _SIZES.get(opt)
        if size is not None:
            return size
        if opt == _C:
            return self.number(1)
        if opt == _I or opt == _U:
            size = self.number(4)
            if size > _MAXINTSIZE:
                raise self.clib.error("integral size %d is larger than limit of %d" % (size, _MAXINTSIZE))
            return size
        return 0

    def padding(self, at: int, opt: int, size: int) -> int:
        if size == 0 or opt == _C:
            return 0
        if size > self.align:
            size = self.align
        return (size - (at & (size - 1))) & (size - 1)

    def control(self, opt: int) -> None:
        if opt == 32:  # ' '
            return
        if opt == 62:  # '>'
            self.big = True
        elif opt == 60:  # '<'
            self.big = False
        elif opt == 33:  # '!'
            a = self.number(_MAXALIGN)
            if a <= 0 or a & (a - 1):
                raise self.clib.error("alignment %d is not a power of 2" % a)
            self.align = a
        else:
            raise self.clib.arg_error(1, "invalid format option '%s'" % chr(opt))

    def __iter__(self):
        fmt = self.fmt
        while self.i < len(fmt):
            opt = fmt[self.i]
            self.i += 1
            yield opt, self.size(opt)


def _to_u64(n) -> int:
    """A Lua number as Redis's struct turns it into 64 bits."""
    if type(n) is int:
        return n & _MASK64
    if n != n:
        return 1 << 63
    if n < 0:
        return (1 << 63) if n < -2.0 ** 63 else int(n) & _MASK64
    return 0 if n >= 2.0 ** 64 else int(n)


def _int_bytes(n, size: int, big: bool) -> bytes:
    b = _to_u64(n).to_bytes(8, "little")
    b = b[:size] if size <= 8 else b + bytes(size - 8)
    return b[::-1] if big else b


def _read_int(b: bytes, big: bool, signed: bool, size: int):
    if not big:
        b = b[::-1]
    v = int.from_bytes(b[-8:], "big")  # what a 64-bit accumulator keeps
    if not signed:
        return v if v < 1 << 63 else float(v)
    mask = (_MASK64 << ((size * 8 - 1) & 63)) & _MASK64  # (the shift as x86 masks it)
    if v & mask:
        v |= mask
    return v - (1 << 64) if v & (1 << 63) else v


class Struct:
    def __init__(self, clib: CLib):
        self.clib = clib
        self._tonumber = clib._tonumber

    def pack(self, args):
        clib = self.clib
        f = _Format(clib.string(args, 1), clib)
        args = args + (None,)  # the nil Redis's pack pushes above its arguments
        arg = 2
        out = []
        total = 0
        for opt, size in f:
            pad = f.padding(total, opt, size)
            if pad:
                out.append(bytes(pad))
                total += pad
            if opt in _INTEGERS:
                out.append(_int_bytes(clib.number(args, arg), size, f.big))
                arg += 1
            elif opt == _X:
                out.append(b"\0")
            elif opt == _F:
                x = ctypes.c_float(clib.number(args, arg)).value  # C's double -> float
                out.append(_FLOAT[f.big].pack(x))
                arg += 1
            elif opt == _D:
                out.append(_DOUBLE[f.big].pack(clib.number(args, arg)))
                arg += 1
            elif opt == _C or opt == _S:
                s = clib.string(args, arg)
                arg += 1
                if size == 0:
                    size = len(s)
                if len(s) < size:
                    raise clib.arg_error(arg, "string too short")  # (the next argument's number, as Redis says it)
                out.append(s[:size])
                if opt == _S:
                    out.append(b"\0")
                    size += 1
            else:
                f.control(opt)
            total += size
        return b"".join(out)

    def unpack(self, args):
        clib = self.clib
        f = _Format(clib.string(args, 1), clib)
        data = clib.string(args, 2)
        ld = len(data)
        start = clib.opt_integer(args, 3, 1) & _MASK64  # (C size_t arithmetic from here on)
        if start == 0:
            raise clib.arg_error(3, "offset must be 1 or greater")
        pos = start - 1
        base = len(args)
        out = []
        for opt, size in f:
            pos += f.padding(pos, opt, size)
            if size > ld or pos > ld - size:
                raise clib.arg_error(2, "data string too short")
            if base + len(out) + 2 > MAXCSTACK:
                raise clib.stack_error("too many results")
            if opt in _INTEGERS:
                out.append(_read_int(data[pos:pos + size], f.big, opt >= 97, size))
            elif opt == _X:
                pass
            elif opt == _F:
                out.append(_FLOAT[f.big].unpack_from(data, pos)[0])
            elif opt == _D:
                out.append(_DOUBLE[f.big].unpack_from(data, pos)[0])
            elif opt == _C:
                if size == 0:
                    n = self._previous_number(out)
                    if n is None:
                        raise clib.error("format 'c0' needs a previous size")
                    out.pop()
                    size = int(n) if n >= 0 else _MASK64  # (a C size_t)
                    if size > ld or pos > ld - size:
                        raise clib.arg_error(2, "data string too short")
                out.append(data[pos:pos + size])
            elif opt == _S:
                end = data.find(b"\0", pos)
                if end < 0:
                    raise clib.error("unfinished string in data")
                out.append(data[pos:end])
                size = end - pos + 1
            else:
                f.control(opt)
            pos += size
        pos = (pos + 1) & _MASK64
        out.append(pos - (1 << 64) if pos >> 63 else pos)
        return tuple(out)

    def _previous_number(self, out: list):
        if not out:
            return None
        v = out[-1]
        if type(v) is bytes:
            v = self._tonumber(v)
        return v if type(v) in (int, float) and v == v else None

    def size(self, args) -> int:
        clib = self.clib
        f = _Format(clib.string(args, 1), clib)
        pos = 0
        for opt, size in f:
            pos += f.padding(pos, opt, size)
            if opt == _S:
                raise clib.arg_error(1, "option 's' has no fixed size")
            if opt == _C and size == 0:
                raise clib.arg_error(1, "option 'c0' has no fixed size")
            if opt not in _ALNUM:
                f.control(opt)
            pos += size
        return pos


def install(vm, clib: CLib) -> None:
    s = Struct(clib)
    t = vm.lua.table()
    t[b"pack"] = lambda *args: s.pack(args)
    t[b"unpack"] = lambda *args: s.unpack(args)
    t[b"size"] = lambda *args: s.size(args)
    vm.api[b"env"][b"struct"] = t
