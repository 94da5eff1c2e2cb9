/* RESP encoding of the one reply shape that costs Python the most per byte:
 * an array of bulk strings (LRANGE, SMEMBERS, HGETALL, ZRANGE, MGET …).
 *
 * bulk_array(seq) -> bytes or None
 *     seq is a list or a tuple. When every item is a bytes object (or a
 *     bytearray), returns "*N\r\n" followed by "$len\r\nitem\r\n" for each
 *     item, built in one allocation: a first pass sums the sizes, a second
 *     copies. Otherwise returns None, and the caller encodes item by item
 *     (nested arrays, integers, nils). An empty sequence gives "*0\r\n".
 *
 * It reads the sequence without calling back into Python, so nothing can
 * change it between the two passes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static int digits(Py_ssize_t n) {
    int d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

static char *put_int(char *p, Py_ssize_t n) {
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    while (i) *p++ = tmp[--i];
    return p;
}

static PyObject *bulk_array(PyObject *self, PyObject *seq) {
    PyObject **items;
    Py_ssize_t n;
    if (PyList_CheckExact(seq)) {
        items = ((PyListObject *)seq)->ob_item;
        n = PyList_GET_SIZE(seq);
    } else if (PyTuple_CheckExact(seq)) {
        items = ((PyTupleObject *)seq)->ob_item;
        n = PyTuple_GET_SIZE(seq);
    } else {
        Py_RETURN_NONE;
    }
    Py_ssize_t total = 1 + digits(n) + 2;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = items[i];
        Py_ssize_t len;
        if (PyBytes_CheckExact(it)) {
            len = PyBytes_GET_SIZE(it);
        } else if (PyByteArray_CheckExact(it)) {
            len = PyByteArray_GET_SIZE(it);
        } else {
            Py_RETURN_NONE;
        }
        total += 1 + digits(len) + 2 + len + 2;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL) return NULL;
    char *p = PyBytes_AS_STRING(out);
    *p++ = '*';
    p = put_int(p, n);
    *p++ = '\r';
    *p++ = '\n';
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = items[i];
        const char *data;
        Py_ssize_t len;
        if (PyBytes_CheckExact(it)) {
            data = PyBytes_AS_STRING(it);
            len = PyBytes_GET_SIZE(it);
        } else {
            data = PyByteArray_AS_STRING(it);
            len = PyByteArray_GET_SIZE(it);
        }
        *p++ = '$';
        p = put_int(p, len);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, data, (size_t)len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    return out;
}

static PyMethodDef methods[] = {
    {"bulk_array", bulk_array, METH_O, "RESP array of bulk strings, or None when an item is not bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_respc", NULL, -1, methods};

PyMODINIT_FUNC PyInit__respc(void) { return PyModule_Create(&module); }
