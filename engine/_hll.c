/* engine._hll: the hot operations of engine.hll, in C, giving the same bytes.
 *
 * engine/hll.py documents the format (the HYLL header, dense and sparse
 * registers, the hash, the estimator) and holds the pure-Python functions
 * these replace one for one: is_hll, pfadd, merge, set_registers, to_dense,
 * count, count_raw, index_count. A value arrives as a bytearray when it is to be
 * changed (resized here when it turns dense or a sparse one grows) and as
 * any buffer when it is only read. Callers have checked the header
 * (engine.hll.is_hll): encoding 0 or 1, a dense value 12304 bytes long.
 *
 * A sparse value is changed in a scratch copy that ends with one zero byte
 * (the NUL a Redis string ends with, which a cut-short XZERO reads as its
 * second byte) and copied back only when every step succeeded, so a damaged
 * value is left as it was.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define HDR 16
#define P 14
#define NREG (1 << P)
#define Q (64 - P)
#define DENSE_SIZE (HDR + (NREG * 6 + 7) / 8)
#define ENC_DENSE 0
#define ENC_SPARSE 1
#define VAL_MAX 32
#define STALE 0x80
#define PROMOTE 2

/* --- hash ----------------------------------------------------------------- */

static uint64_t
murmur64a(const uint8_t *data, size_t len)
{
    const uint64_t m = 0xc6a4a7935bd1e995ULL;
    uint64_t h = 0xadc83b19ULL ^ ((uint64_t)len * m);
    size_t blocks = len >> 3, i;
    for (i = 0; i < blocks; i++) {
        uint64_t k;
        memcpy(&k, data + 8 * i, 8); /* x86-64 and arm64: little-endian */
        k *= m;
        k ^= k >> 47;
        k *= m;
        h ^= k;
        h *= m;
    }
    const uint8_t *t = data + 8 * blocks;
    size_t rest = len & 7;
    if (rest) {
        uint64_t tail = 0;
        for (i = 0; i < rest; i++)
            tail |= (uint64_t)t[i] << (8 * i);
        h ^= tail;
        h *= m;
    }
    h ^= h >> 47;
    h *= m;
    h ^= h >> 47;
    return h;
}

static inline void
index_count_of(const uint8_t *data, size_t len, long *index, int *count)
{
    uint64_t h = murmur64a(data, len);
    *index = (long)(h & (NREG - 1));
    uint64_t rest = (h >> P) | ((uint64_t)1 << Q);
    *count = __builtin_ctzll(rest) + 1;
}

/* --- dense registers ------------------------------------------------------ */

static inline int
dget(const uint8_t *regs, long i)
{
    long pos = i * 6;
    long b = pos >> 3;
    int fb = pos & 7;
    unsigned x = regs[b] >> fb;
    if (fb > 2)
        x |= (unsigned)regs[b + 1] << (8 - fb);
    return x & 63;
}

static inline void
dset(uint8_t *regs, long i, int val)
{
    long pos = i * 6;
    long b = pos >> 3;
    int fb = pos & 7;
    regs[b] = (uint8_t)((regs[b] & ~(63 << fb)) | (val << fb));
    if (fb > 2)
        regs[b + 1] = (uint8_t)((regs[b + 1] & ~(63 >> (8 - fb))) | (val >> (8 - fb)));
}

/* --- sparse values -------------------------------------------------------- */

/* A scratch copy of a value: len bytes, then a zero byte, room for more. */
typedef struct {
    uint8_t *p;
    Py_ssize_t len, cap;
} scratch;

/* An XZERO's run; its second byte past the end reads as zero. */
static inline long
xzero_run(const uint8_t *p, const uint8_t *end)
{
    return (((long)(p[0] & 0x3f) << 8) | (p + 1 < end ? p[1] : 0)) + 1;
}

/* Decode the opcode at *p (before end) and step past it: its run, and its
 * register value (0 for ZERO and XZERO). */
static inline long
next_op(const uint8_t **p, const uint8_t *end, int *value)
{
    const uint8_t *q = *p;
    if (*q < 0x40) {
        *value = 0;
        *p = q + 1;
        return *q + 1;
    }
    if (*q < 0x80) {
        *value = 0;
        *p = q + 2;
        return xzero_run(q, end);
    }
    *value = ((*q >> 2) & 0x1f) + 1;
    *p = q + 1;
    return (*q & 3) + 1;
}

/* Fill the 12288 register bytes ``regs`` from the sparse opcodes of s; 0, or
 * -1 when they do not cover exactly NREG registers. */
static int
sparse_to_regs(const uint8_t *s, Py_ssize_t len, uint8_t *regs)
{
    const uint8_t *p = s + HDR, *end = s + len;
    long idx = 0;
    memset(regs, 0, DENSE_SIZE - HDR);
    while (p < end) {
        int value;
        long run = next_op(&p, end, &value);
        if (idx + run > NREG)
            return -1;
        for (long j = 0; value && j < run; j++)
            dset(regs, idx + j, value);
        idx += run;
    }
    return idx == NREG ? 0 : -1;
}

/* Turn the scratch value dense (it has room for DENSE_SIZE + 1). */
static int
promote(scratch *s)
{
    uint8_t regs[DENSE_SIZE - HDR];
    if (sparse_to_regs(s->p, s->len, regs) < 0)
        return -1;
    memcpy(s->p + HDR, regs, sizeof regs);
    s->p[4] = ENC_DENSE;
    s->len = DENSE_SIZE;
    s->p[s->len] = 0;
    return 0;
}

static inline uint8_t
val_op(int value, long run)
{
    return (uint8_t)(0x80 | ((value - 1) << 2) | (run - 1));
}

static inline int
zero_ops(uint8_t *out, long run)
{
    if (run > 64) {
        run -= 1;
        out[0] = (uint8_t)(0x40 | (run >> 8));
        out[1] = (uint8_t)(run & 0xff);
        return 2;
    }
    out[0] = (uint8_t)(run - 1);
    return 1;
}

/* Join equal adjacent VALs (at most 4 registers) among 5 opcodes from prev. */
static void
merge_vals(scratch *s, Py_ssize_t prev)
{
    uint8_t *base = s->p;
    Py_ssize_t q = prev >= 0 ? prev : HDR, end = s->len;
    int budget = 5;
    while (q < end && budget) {
        budget--;
        uint8_t b = base[q];
        if (b < 0x80) {
            q += b < 0x40 ? 1 : 2;
            continue;
        }
        if (q + 1 < end && base[q + 1] >= 0x80) {
            uint8_t b2 = base[q + 1];
            int run = (b & 3) + (b2 & 3) + 2;
            if (((b ^ b2) & 0x7c) == 0 && run <= 4) {
                base[q + 1] = (uint8_t)((b & 0xfc) | (run - 1));
                memmove(base + q, base + q + 1, end - q - 1);
                end--;
                continue;
            }
        }
        q++;
    }
    s->len = end;
    base[end] = 0;
}

/* Raise register index of the sparse scratch value to count: 1 changed, 0
 * not, -1 damaged, PROMOTE when it must turn dense. */
static int
sparse_set(scratch *s, long index, int count, long long max_bytes)
{
    if (count > VAL_MAX)
        return PROMOTE;
    uint8_t *base = s->p;
    const uint8_t *q = base + HDR, *stop = base + s->len;
    Py_ssize_t p = HDR, end = s->len, prev = -1;
    long first = 0, run = 0;
    int value = 0;
    while (q < stop) {
        run = next_op(&q, stop, &value);
        if (index <= first + run - 1)
            break;
        prev = p;
        p = q - base;
        first += run;
    }
    if (p >= end) /* no opcode covers the register */
        return -1;
    int kind = base[p] < 0x40 ? 0 : base[p] < 0x80 ? 1 : 2;
    if (kind == 2 && value >= count)
        return 0;
    if (run == 1 && kind != 1) {
        base[p] = val_op(count, 1);
        merge_vals(s, prev);
        return 1;
    }
    uint8_t seq[5];
    int n = 0;
    long last = first + run - 1;
    if (kind == 2) {
        if (index != first)
            seq[n++] = val_op(value, index - first);
        seq[n++] = val_op(count, 1);
        if (index != last)
            seq[n++] = val_op(value, last - index);
    } else {
        if (index != first)
            n += zero_ops(seq + n, index - first);
        seq[n++] = val_op(count, 1);
        if (index != last)
            n += zero_ops(seq + n, last - index);
    }
    Py_ssize_t oplen = kind == 1 ? 2 : 1, grown = s->len + n - oplen;
    if (grown > s->len && grown > max_bytes)
        return PROMOTE;
    Py_ssize_t next = p + oplen;
    if (next < end)
        memmove(base + p + n, base + next, end - next);
    memcpy(base + p, seq, n);
    s->len = grown;
    base[grown] = 0;
    merge_vals(s, prev);
    return 1;
}

static int
scratch_of(scratch *s, PyObject *buf, Py_ssize_t extra)
{
    Py_ssize_t len = PyByteArray_GET_SIZE(buf);
    s->cap = (len > DENSE_SIZE ? len : DENSE_SIZE) + extra + 8;
    s->p = PyMem_Malloc(s->cap);
    if (s->p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(s->p, PyByteArray_AS_STRING(buf), len);
    s->len = len;
    s->p[len] = 0;
    return 0;
}

/* Copy the scratch value back into the bytearray. */
static int
store(PyObject *buf, scratch *s)
{
    if (PyByteArray_Resize(buf, s->len) < 0)
        return -1;
    memcpy(PyByteArray_AS_STRING(buf), s->p, s->len);
    return 0;
}

/* --- the operations --------------------------------------------------------- */

static inline int
dense_raise(uint8_t *regs, long index, int count)
{
    if (dget(regs, index) >= count)
        return 0;
    dset(regs, index, count);
    return 1;
}

/* Raise register index of the scratch value (sparse or dense) to count: 1
 * changed, 0 not, -1 damaged. */
static int
scratch_raise(scratch *s, long index, int count, long long max_bytes)
{
    if (s->p[4] == ENC_SPARSE) {
        int r = sparse_set(s, index, count, max_bytes);
        if (r != PROMOTE)
            return r;
        if (promote(s) < 0)
            return -1;
    }
    return dense_raise(s->p + HDR, index, count);
}

/* Add elements[start:] (a list or tuple, of bytes) to the HLL in buf. */
static PyObject *
pfadd_seq(PyObject *buf, PyObject *elements, Py_ssize_t start, long long max_bytes)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(elements), i;
    PyObject **items = PySequence_Fast_ITEMS(elements);
    for (i = start; i < n; i++) {
        if (!PyBytes_Check(items[i])) {
            PyErr_SetString(PyExc_TypeError, "elements must be bytes");
            return NULL;
        }
    }
    uint8_t *v = (uint8_t *)PyByteArray_AS_STRING(buf);
    int changed = 0, count, r = 0;
    long index;
    scratch s = {NULL, 0, 0};
    if (v[4] == ENC_SPARSE && scratch_of(&s, buf, 3 * (n - start)) < 0)
        return NULL;
    for (i = start; i < n && r >= 0; i++) {
        index_count_of((uint8_t *)PyBytes_AS_STRING(items[i]), PyBytes_GET_SIZE(items[i]), &index, &count);
        r = s.p ? scratch_raise(&s, index, count, max_bytes) : dense_raise(v + HDR, index, count);
        changed |= r > 0;
    }
    if (r < 0)
        changed = -1;
    else if (changed && s.p) {
        s.p[15] |= STALE;
        if (store(buf, &s) < 0) {
            PyMem_Free(s.p);
            return NULL;
        }
    } else if (changed)
        v[15] |= STALE;
    PyMem_Free(s.p);
    return PyLong_FromLong(changed);
}

static PyObject *
pfadd(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyByteArray_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "pfadd(bytearray, elements, start, max_bytes)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[2]);
    long long max_bytes = PyLong_AsLongLong(args[3]);
    if (PyErr_Occurred())
        return NULL;
    if (start < 0) {
        PyErr_SetString(PyExc_ValueError, "start must be >= 0");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(args[1], "elements must be a sequence");
    if (seq == NULL)
        return NULL;
    PyObject *r = pfadd_seq(args[0], seq, start, max_bytes);
    Py_DECREF(seq);
    return r;
}

static int
regs_arg(PyObject *o, uint8_t **regs)
{
    if (!PyByteArray_Check(o) || PyByteArray_GET_SIZE(o) != NREG) {
        PyErr_SetString(PyExc_TypeError, "registers: a bytearray of 16384");
        return -1;
    }
    *regs = (uint8_t *)PyByteArray_AS_STRING(o);
    return 0;
}

static PyObject *
merge(PyObject *self, PyObject *args)
{
    PyObject *maxo;
    Py_buffer vb;
    uint8_t *max;
    if (!PyArg_ParseTuple(args, "Oy*", &maxo, &vb))
        return NULL;
    if (regs_arg(maxo, &max) < 0) {
        PyBuffer_Release(&vb);
        return NULL;
    }
    const uint8_t *v = vb.buf;
    long i = 0;
    if (v[4] == ENC_DENSE) {
        for (i = 0; i < NREG; i++) {
            int r = dget(v + HDR, i);
            if (r > max[i])
                max[i] = (uint8_t)r;
        }
    } else {
        const uint8_t *p = v + HDR, *end = v + vb.len;
        while (p < end) {
            int value;
            long run = next_op(&p, end, &value);
            if (i + run > NREG) { /* damaged: a run past the last register */
                i = -1;
                break;
            }
            if (!value)
                i += run;
            for (; value && run; run--, i++)
                if (value > max[i])
                    max[i] = (uint8_t)value;
        }
    }
    PyBuffer_Release(&vb);
    return PyBool_FromLong(i == NREG);
}

static PyObject *
set_registers(PyObject *self, PyObject *args)
{
    PyObject *buf, *maxo;
    long long max_bytes;
    uint8_t *max;
    if (!PyArg_ParseTuple(args, "O!OL", &PyByteArray_Type, &buf, &maxo, &max_bytes))
        return NULL;
    if (regs_arg(maxo, &max) < 0)
        return NULL;
    uint8_t *v = (uint8_t *)PyByteArray_AS_STRING(buf);
    long i;
    if (v[4] == ENC_DENSE) {
        for (i = 0; i < NREG; i++)
            if (max[i])
                dense_raise(v + HDR, i, max[i]);
        v[15] |= STALE;
        Py_RETURN_NONE;
    }
    Py_ssize_t set = 0;
    for (i = 0; i < NREG; i++)
        set += max[i] != 0;
    scratch s;
    if (scratch_of(&s, buf, 3 * set) < 0)
        return NULL;
    for (i = 0; i < NREG; i++)
        if (max[i])
            scratch_raise(&s, i, max[i], max_bytes); /* damage: that register is skipped, as Redis does */
    s.p[15] |= STALE;
    int r = store(buf, &s);
    PyMem_Free(s.p);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
to_dense(PyObject *self, PyObject *buf)
{
    if (!PyByteArray_Check(buf)) {
        PyErr_SetString(PyExc_TypeError, "to_dense(bytearray)");
        return NULL;
    }
    uint8_t *v = (uint8_t *)PyByteArray_AS_STRING(buf);
    if (v[4] == ENC_DENSE)
        Py_RETURN_TRUE;
    uint8_t regs[DENSE_SIZE - HDR];
    if (sparse_to_regs(v, PyByteArray_GET_SIZE(buf), regs) < 0)
        Py_RETURN_FALSE;
    if (PyByteArray_Resize(buf, DENSE_SIZE) < 0)
        return NULL;
    v = (uint8_t *)PyByteArray_AS_STRING(buf);
    v[4] = ENC_DENSE;
    memcpy(v + HDR, regs, sizeof regs);
    Py_RETURN_TRUE;
}

/* --- the estimator ---------------------------------------------------------- */

static double
sigma(double x)
{
    if (x == 1.0)
        return INFINITY;
    double y = 1.0, z = x, before;
    do {
        x *= x;
        before = z;
        z += x * y;
        y += y;
    } while (before != z);
    return z;
}

static double
tau(double x)
{
    if (x == 0.0 || x == 1.0)
        return 0.0;
    double y = 1.0, z = 1 - x, before;
    do {
        x = sqrt(x);
        before = z;
        y *= 0.5;
        double t = 1 - x;
        z -= t * t * y;
    } while (before != z);
    return z / 3;
}

static PyObject *
estimate(const long *hist)
{
    double m = NREG;
    double z = m * tau((m - hist[Q + 1]) / m);
    for (int j = Q; j >= 1; j--) {
        z += hist[j];
        z *= 0.5;
    }
    z += m * sigma(hist[0] / m);
    double e = 0.721347520444481703680 * m * m / z;
    return PyLong_FromLongLong(llround(e));
}

static PyObject *
count(PyObject *self, PyObject *arg)
{
    Py_buffer vb;
    long hist[64] = {0};
    if (PyObject_GetBuffer(arg, &vb, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *v = vb.buf;
    if (v[4] == ENC_DENSE) {
        for (long i = 0; i < NREG; i++)
            hist[dget(v + HDR, i)]++;
    } else {
        const uint8_t *p = v + HDR, *end = v + vb.len;
        long idx = 0;
        while (p < end) {
            int value;
            long run = next_op(&p, end, &value);
            hist[value] += run;
            idx += run;
        }
        if (idx != NREG) {
            PyBuffer_Release(&vb);
            return PyLong_FromLong(-1);
        }
    }
    PyBuffer_Release(&vb);
    return estimate(hist);
}

static PyObject *
count_raw(PyObject *self, PyObject *arg)
{
    uint8_t *max;
    long hist[64] = {0};
    if (regs_arg(arg, &max) < 0)
        return NULL;
    for (long i = 0; i < NREG; i++)
        hist[max[i] & 63]++;
    return estimate(hist);
}

static PyObject *
index_count(PyObject *self, PyObject *arg)
{
    char *data;
    Py_ssize_t len;
    if (PyBytes_AsStringAndSize(arg, &data, &len) < 0)
        return NULL;
    long index;
    int c;
    index_count_of((uint8_t *)data, len, &index, &c);
    return Py_BuildValue("(li)", index, c);
}

/* is_hll(value): the header test of engine.hll.is_hll. */
static PyObject *
is_hll(PyObject *self, PyObject *arg)
{
    const uint8_t *v;
    Py_ssize_t len;
    if (PyBytes_Check(arg)) {
        v = (const uint8_t *)PyBytes_AS_STRING(arg);
        len = PyBytes_GET_SIZE(arg);
    } else if (PyByteArray_Check(arg)) {
        v = (const uint8_t *)PyByteArray_AS_STRING(arg);
        len = PyByteArray_GET_SIZE(arg);
    } else {
        PyErr_SetString(PyExc_TypeError, "is_hll(bytes or bytearray)");
        return NULL;
    }
    int ok = len >= HDR && memcmp(v, "HYLL", 4) == 0
             && (v[4] == ENC_SPARSE || (v[4] == ENC_DENSE && len == DENSE_SIZE));
    return PyBool_FromLong(ok);
}

static PyMethodDef methods[] = {
    {"pfadd", (PyCFunction)(void (*)(void))pfadd, METH_FASTCALL,
     "pfadd(buf, elements, start, max_bytes) -> 1 changed, 0 not, -1 damaged"},
    {"merge", merge, METH_VARARGS, "merge(maxregs, value) -> False when damaged"},
    {"set_registers", set_registers, METH_VARARGS, "set_registers(buf, maxregs, max_bytes)"},
    {"to_dense", to_dense, METH_O, "to_dense(buf) -> False when damaged"},
    {"count", count, METH_O, "count(value) -> cardinality, -1 when damaged"},
    {"count_raw", count_raw, METH_O, "count_raw(maxregs) -> cardinality"},
    {"index_count", index_count, METH_O, "index_count(element) -> (index, count)"},
    {"is_hll", is_hll, METH_O, "is_hll(value) -> whether the header is an HLL's"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "engine._hll", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__hll(void)
{
    return PyModule_Create(&module);
}
