/* engine._crc64: RDB helpers in C. Redis's CRC-64 (Jones polynomial,
 * reflected, init 0, no final xor), the checksum of DUMP payloads and RDB
 * files, and LZF decompression.
 *
 * crc64(data, crc=0) -> int gives the same results as the pure-Python
 * table loop in engine/rdb.py, which uses this one when it is built. The
 * loop is "slicing by 8": eight tables, built once at import, let one step
 * fold eight input bytes, where the plain table loop folds one. An RDB file
 * of a million small keys is checksummed in milliseconds this way.
 *
 * lzf_decompress (below) is engine/lzf.py's loop in C, for the same reason:
 * a Redis RDB file holds most strings LZF-compressed.
 *
 * ``data`` is anything with the buffer protocol (bytes, bytearray,
 * memoryview, mmap). The GIL is released for large inputs of immutable
 * bytes only: a bytearray or mmap could change under the loop.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define POLY_REFLECTED 0x95AC9329AC4BC9B5ULL /* bit reversal of 0xAD93D23594C935A9 */
#define NOGIL_MIN (1 << 20)

static uint64_t table[8][256];

static void
build_tables(void)
{
    for (int b = 0; b < 256; b++) {
        uint64_t crc = (uint64_t)b;
        for (int i = 0; i < 8; i++)
            crc = (crc & 1) ? (crc >> 1) ^ POLY_REFLECTED : crc >> 1;
        table[0][b] = crc;
    }
    for (int b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++)
            table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xFF];
}

static uint64_t
load_le64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24
           | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static uint64_t
update(uint64_t crc, const uint8_t *p, Py_ssize_t n)
{
    while (n >= 8) {
        crc ^= load_le64(p);
        crc = table[7][crc & 0xFF] ^ table[6][(crc >> 8) & 0xFF] ^ table[5][(crc >> 16) & 0xFF]
              ^ table[4][(crc >> 24) & 0xFF] ^ table[3][(crc >> 32) & 0xFF]
              ^ table[2][(crc >> 40) & 0xFF] ^ table[1][(crc >> 48) & 0xFF] ^ table[0][crc >> 56];
        p += 8;
        n -= 8;
    }
    while (n-- > 0)
        crc = table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return crc;
}

static PyObject *
crc64(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *start = nargs == 2 ? args[1] : NULL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nkw == 1 && nargs == 1 && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "crc") == 0)
        start = args[1];
    else if (nkw != 0 || nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "crc64(data, crc=0)");
        return NULL;
    }
    uint64_t crc = 0;
    if (start != NULL) {
        crc = PyLong_AsUnsignedLongLong(start);
        if (crc == (uint64_t)-1 && PyErr_Occurred())
            return NULL;
    }
    PyObject *data = args[0];
    if (PyBytes_CheckExact(data)) {
        const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(data);
        Py_ssize_t n = PyBytes_GET_SIZE(data);
        if (n >= NOGIL_MIN) {
            Py_BEGIN_ALLOW_THREADS
            crc = update(crc, p, n);
            Py_END_ALLOW_THREADS
        } else {
            crc = update(crc, p, n);
        }
        return PyLong_FromUnsignedLongLong(crc);
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    crc = update(crc, (const uint8_t *)view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(crc);
}

/* lzf_decompress(src, out_len) -> bytes, or an int error code (engine/lzf.py
 * names them): RDB files from Redis hold every string over 20 bytes LZF-
 * compressed when that pays, so a full sync from Redis runs this per value.
 * Same checks, in the same order, as engine/lzf.py's loop:
 * 1 literal run past the end of the input, 2 back reference before the
 * start of the output, 3 output longer than out_len, 4 input ends inside a
 * back reference, 5 output shorter than out_len. Returns None when out_len
 * is more than src could ever expand to: the caller's Python loop answers
 * (with its own error) without this allocating out_len bytes. */
#define LZF_MAX_RATIO 90 /* a 3-byte back reference yields at most 264 bytes */

static PyObject *
lzf_decompress(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "lzf_decompress(src, out_len)");
        return NULL;
    }
    Py_ssize_t out_len = PyLong_AsSsize_t(args[1]);
    if (out_len == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *src = (const uint8_t *)view.buf;
    Py_ssize_t n = view.len, i = 0, o = 0;
    if (out_len < 0 || out_len / LZF_MAX_RATIO > n + 1) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, out_len);
    if (result == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    int err = 0;
    while (i < n) {
        Py_ssize_t c = src[i++];
        if (c < 32) {
            c += 1;
            if (i + c > n) { err = 1; break; }
            if (o + c > out_len) { err = 3; break; }
            memcpy(out + o, src + i, (size_t)c);
            i += c;
            o += c;
        } else {
            Py_ssize_t length = c >> 5;
            if (length == 7) {
                if (i >= n) { err = 4; break; }
                length += src[i++];
            }
            if (i >= n) { err = 4; break; }
            Py_ssize_t start = o - ((c & 31) << 8) - src[i++] - 1;
            length += 2;
            if (start < 0) { err = 2; break; }
            if (o + length > out_len) { err = 3; break; }
            for (Py_ssize_t k = 0; k < length; k++) /* forward: an overlap repeats the pattern */
                out[o + k] = out[start + k];
            o += length;
        }
    }
    PyBuffer_Release(&view);
    if (!err && o != out_len)
        err = 5;
    if (err) {
        Py_DECREF(result);
        return PyLong_FromLong(err);
    }
    return result;
}

static PyMethodDef methods[] = {
    {"crc64", (PyCFunction)(void (*)(void))crc64, METH_FASTCALL | METH_KEYWORDS,
     "crc64(data, crc=0) -> Redis's CRC-64 of data, continuing from crc"},
    {"lzf_decompress", (PyCFunction)(void (*)(void))lzf_decompress, METH_FASTCALL,
     "lzf_decompress(src, out_len) -> bytes, an error code, or None (see the source)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "engine._crc64", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__crc64(void)
{
    build_tables();
    return PyModule_Create(&module);
}
