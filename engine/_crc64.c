/* engine._crc64: Redis's CRC-64 (Jones polynomial, reflected, init 0, no
 * final xor), the checksum of DUMP payloads and RDB files.
 *
 * crc64(data, crc=0) -> int gives the same results as the pure-Python
 * table loop in engine/rdb.py, which uses this one when it is built. The
 * loop is "slicing by 8": eight tables, built once at import, let one step
 * fold eight input bytes, where the plain table loop folds one. An RDB file
 * of a million small keys is checksummed in milliseconds this way.
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
crc64(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "crc64(data, crc=0)");
        return NULL;
    }
    uint64_t crc = 0;
    if (nargs == 2) {
        crc = PyLong_AsUnsignedLongLong(args[1]);
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

static PyMethodDef methods[] = {
    {"crc64", (PyCFunction)(void (*)(void))crc64, METH_FASTCALL,
     "crc64(data, crc=0) -> Redis's CRC-64 of data, continuing from crc"},
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
