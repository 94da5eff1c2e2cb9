"""LZF decompression, as used for compressed strings in RDB and DUMP payloads.

Redis compresses strings longer than 20 bytes with LZF when that saves space;
Keel must read such payloads (RESTORE of a real Redis's DUMP, a full sync from
a Redis primary). Keel itself writes strings uncompressed, so only the
decompressor lives here.

Format: a sequence of runs, each opened by a control byte ``c``:
* ``c < 32``: a literal run of ``c + 1`` bytes copied from the input;
* otherwise a back reference: length ``c >> 5`` (7 means "7 + the next byte"),
  plus 2; distance ``((c & 31) << 8) + next byte + 1`` back from the end of
  the output. The copy may overlap the bytes it produces (a run of a repeated
  pattern), in which case the pattern repeats.

Invariant: ``decompress`` either returns exactly ``out_len`` bytes or raises
``LzfError``; a hostile input can never make it produce more than
``out_len`` bytes.
"""

from __future__ import annotations


class LzfError(ValueError):
    """The compressed data is malformed or does not expand to the stated length."""


def decompress(src: bytes, out_len: int) -> bytes:
    """Expand ``src``; it must produce exactly ``out_len`` bytes."""
    out = bytearray()
    i = 0
    n = len(src)
    try:
        while i < n:
            c = src[i]
            i += 1
            if c < 32:
                c += 1
                if i + c > n:
                    raise LzfError("literal run past the end of the input")
                out += src[i:i + c]
                i += c
            else:
                length = c >> 5
                if length == 7:
                    length += src[i]
                    i += 1
                start = len(out) - ((c & 31) << 8) - src[i] - 1
                i += 1
                length += 2
                if start < 0:
                    raise LzfError("back reference before the start of the output")
                end = start + length
                if end <= len(out):
                    out += out[start:end]
                else:
                    # Overlapping copy: the output repeats its last ``period`` bytes.
                    pattern = out[start:]
                    out += (pattern * (length // len(pattern) + 1))[:length]
            if len(out) > out_len:
                raise LzfError("output longer than the stated length")
    except IndexError:
        raise LzfError("input ends inside a back reference") from None
    if len(out) != out_len:
        raise LzfError("output shorter than the stated length")
    return bytes(out)


_C_ERRORS = {1: "literal run past the end of the input", 2: "back reference before the start of the output",
             3: "output longer than the stated length", 4: "input ends inside a back reference",
             5: "output shorter than the stated length"}
decompress_python = decompress
try:  # the same loop in C (engine/_crc64.c), when it is built
    from engine._crc64 import lzf_decompress as _lzf_c
except ImportError:
    pass
else:
    def decompress(src: bytes, out_len: int) -> bytes:  # noqa: F811
        out = _lzf_c(src, out_len)
        if type(out) is bytes:
            return out
        if out is None:  # more than src can expand to: the Python loop says why
            return decompress_python(src, out_len)
        raise LzfError(_C_ERRORS[out])
