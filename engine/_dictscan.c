/* engine._dictscan: walk a dict by the position of its entries.
 *
 * A CPython dict keeps its entries in an array, in insertion order. A new
 * key is appended at the end; a deleted key leaves a hole; nothing moves
 * until the table is rebuilt (on an insertion that finds the array full),
 * and then the live entries are packed to the front in the same order. So a
 * position in that array is a cursor that costs O(1) to resume from, and
 * the only event that moves keys is a rebuild, which moves each key towards
 * the front, never away from it. So a walk from the end towards the front
 * (SCAN, ``below``) meets every key that was there when it started: keys
 * inserted since land behind it, and a rebuild moves the keys still ahead of
 * it further ahead, never past it.
 *
 * PyDict_Next is public API and its position is the entry index plus one.
 * The number of entries in use (holes included) and the entries themselves,
 * walked towards the front, are not public: they are read from the keys
 * object, whose layout is declared below for CPython 3.11 to 3.13 (default,
 * GIL builds) and checked once at import against a dict whose answer is
 * known.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <time.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030E0000 || defined(Py_GIL_DISABLED)
#error "engine._dictscan reads the dict layout of CPython 3.11-3.13 (GIL builds)"
#endif

/* The head of CPython's PyDictKeysObject (Include/internal/pycore_dict.h). */
typedef struct {
    Py_ssize_t dk_refcnt;
    uint8_t dk_log2_size;
    uint8_t dk_log2_index_bytes;
    uint8_t dk_kind;
    uint32_t dk_version;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
} keys_head;

static Py_ssize_t
nentries(PyObject *d)
{
    return ((keys_head *)((PyDictObject *)d)->ma_keys)->dk_nentries;
}

/* layout(d) -> (entries, live): positions in use (holes included), and keys. */
static PyObject *
layout(PyObject *self, PyObject *d)
{
    if (!PyDict_CheckExact(d)) {
        PyErr_SetString(PyExc_TypeError, "layout() takes a dict");
        return NULL;
    }
    return Py_BuildValue("nn", nentries(d), PyDict_GET_SIZE(d));
}

/* The entry array follows the index table (DK_ENTRIES in CPython). */
typedef struct {
    Py_hash_t me_hash;
    PyObject *me_key;
    PyObject *me_value;
} general_entry;

typedef struct {
    PyObject *me_key;
    PyObject *me_value;
} unicode_entry;

#define KIND_GENERAL 0
#define KIND_UNICODE 1

/* The key of entry i, or NULL for a hole (deleted entries have no value). */
static PyObject *
entry_key(keys_head *dk, Py_ssize_t i)
{
    char *entries = (char *)dk + sizeof(keys_head) + ((size_t)1 << dk->dk_log2_index_bytes);
    if (dk->dk_kind == KIND_GENERAL) {
        general_entry *e = (general_entry *)entries + i;
        return e->me_value != NULL ? e->me_key : NULL;
    }
    unicode_entry *e = (unicode_entry *)entries + i;
    return e->me_value != NULL ? e->me_key : NULL;
}

/* below(d, cursor, count) -> (next, [keys]): SCAN's step. Walks the entries
 * below position cursor (below the end for cursor 0, or for a cursor past
 * the end) towards the front, taking up to count keys and passing at most
 * 10 * count holes. next is the lowest position looked at: the entries below
 * it are still to come; 0 when the walk reached the front. Walking towards
 * the front is what keeps the guarantee: new keys are appended behind the
 * walk, and a table rebuild only moves keys further towards the front. */
static PyObject *
below(PyObject *self, PyObject *args)
{
    PyObject *d, *out;
    Py_ssize_t pos, count, holes;
    keys_head *dk;
    if (!PyArg_ParseTuple(args, "O!nn", &PyDict_Type, &d, &pos, &count))
        return NULL;
    if (((PyDictObject *)d)->ma_values != NULL) {
        PyErr_SetString(PyExc_TypeError, "below() takes a combined-table dict");
        return NULL;
    }
    dk = (keys_head *)((PyDictObject *)d)->ma_keys;
    if (pos <= 0 || pos > dk->dk_nentries)
        pos = dk->dk_nentries;
    holes = 10 * count;
    out = PyList_New(0);
    if (out == NULL)
        return NULL;
    while (pos > 0 && count > 0) {
        PyObject *k = entry_key(dk, --pos);
        if (k == NULL) {
            if (--holes <= 0)
                break;
            continue;
        }
        if (PyList_Append(out, k) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        count--;
    }
    return Py_BuildValue("nN", pos, out);
}

/* due(d, pos, count, now) -> (next, visited, [keys]): walks up to count
 * entries of a dict of int values from pos on and lists the keys whose
 * value is <= now (the expiry times that have passed). next is 0 once the
 * walk has passed the last entry. */
static PyObject *
due(PyObject *self, PyObject *args)
{
    PyObject *d, *k, *v, *out;
    Py_ssize_t pos, count, end, visited = 0;
    long long now;
    if (!PyArg_ParseTuple(args, "O!nnL", &PyDict_Type, &d, &pos, &count, &now))
        return NULL;
    out = PyList_New(0);
    if (out == NULL)
        return NULL;
    if (pos < 0)
        pos = 0;
    end = nentries(d);
    while (visited < count && pos < end && PyDict_Next(d, &pos, &k, &v)) {
        long long when = PyLong_AsLongLong(v);
        visited++;
        if (when == -1 && PyErr_Occurred()) {
            Py_DECREF(out);
            return NULL;
        }
        if (when <= now && PyList_Append(out, k) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    if (pos >= end)
        pos = 0;
    return Py_BuildValue("nnN", pos, visited, out);
}

/* pick(d, pos) -> key or None: the first live key at or after pos,
 * wrapping around to the front once (RANDOMKEY with a random pos). */
static PyObject *
pick(PyObject *self, PyObject *args)
{
    PyObject *d, *k, *v;
    Py_ssize_t pos;
    if (!PyArg_ParseTuple(args, "O!n", &PyDict_Type, &d, &pos))
        return NULL;
    if (pos < 0 || pos >= nentries(d))
        pos = 0;
    if (PyDict_Next(d, &pos, &k, &v))
        return Py_NewRef(k);
    pos = 0;  /* nothing at or after pos: the first key from the front */
    if (PyDict_Next(d, &pos, &k, &v))
        return Py_NewRef(k);
    Py_RETURN_NONE;
}

/* A xorshift64* generator for sample(): eviction draws millions of positions,
 * and Python's random() per draw cost more than the rest of a sample. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t
rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* sample(d, count, ages, base, clock, mask, floor) -> [(score, pos, key), ...]
 *
 * Eviction's sampling step: draws up to 4 * count random positions of d's
 * entry array and keeps the live ones (a hole is rejected, not replaced by
 * the key after it, so every key is as likely: the keys after a run of holes
 * are the survivors of earlier evictions, often the ones being read), until
 * count keys were seen. With ``ages`` a dict (key -> LRU clock, a key
 * missing counts as ``base``), each key's score is its idle time
 * ``(clock - age) & mask``, and only keys scoring at least ``floor`` are
 * returned (the pool's worst: a worse sample could not enter it); with
 * ``ages`` None every key seen is returned with score 0 for the caller to
 * score. The second element of the result is the number of keys seen. */
static PyObject *
sample(PyObject *self, PyObject *args)
{
    PyObject *d, *ages, *out;
    Py_ssize_t count, n, seen = 0, tries;
    long long base, clock, mask, floor;
    keys_head *dk;
    if (!PyArg_ParseTuple(args, "O!nOLLLL", &PyDict_Type, &d, &count, &ages, &base, &clock, &mask, &floor))
        return NULL;
    if (((PyDictObject *)d)->ma_values != NULL) {
        PyErr_SetString(PyExc_TypeError, "sample() takes a combined-table dict");
        return NULL;
    }
    if (ages != Py_None && !PyDict_CheckExact(ages)) {
        PyErr_SetString(PyExc_TypeError, "sample() takes a dict of ages or None");
        return NULL;
    }
    out = PyList_New(0);
    if (out == NULL)
        return NULL;
    dk = (keys_head *)((PyDictObject *)d)->ma_keys;
    n = dk->dk_nentries;
    if (n <= 0 || count <= 0)
        return Py_BuildValue("Nn", out, seen);
    for (tries = 4 * count; tries > 0 && seen < count; tries--) {
        Py_ssize_t pos = (Py_ssize_t)(rng_next() % (uint64_t)n);
        PyObject *k = entry_key(dk, pos);
        long long score = 0;
        if (k == NULL)
            continue;
        seen++;
        if (ages != Py_None) {
            long long age = base;
            PyObject *v = PyDict_GetItemWithError(ages, k);  /* borrowed */
            if (v != NULL) {
                age = PyLong_AsLongLong(v);
                if (age == -1 && PyErr_Occurred()) {
                    Py_DECREF(out);
                    return NULL;
                }
            } else if (PyErr_Occurred()) {
                Py_DECREF(out);
                return NULL;
            }
            score = (clock - age) & mask;
            if (score < floor)
                continue;
        }
        PyObject *t = Py_BuildValue("LnO", score, pos, k);
        if (t == NULL || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(t);
    }
    return Py_BuildValue("Nn", out, seen);
}

static PyMethodDef methods[] = {
    {"layout", layout, METH_O, "layout(d) -> (entries, live)"},
    {"below", below, METH_VARARGS, "below(d, cursor, count) -> (next, keys)"},
    {"due", due, METH_VARARGS, "due(d, pos, count, now) -> (next, visited, keys)"},
    {"pick", pick, METH_VARARGS, "pick(d, pos) -> key or None"},
    {"sample", sample, METH_VARARGS, "sample(d, count, ages, base, clock, mask, floor) -> ([(score, pos, key)], seen)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "engine._dictscan", NULL, -1, methods,
};

/* The layout check: a dict given 3 keys, then one deleted, uses 3 entries
 * and holds 2; anything else means the struct above is not this Python's. */
static int
layout_holds(void)
{
    int ok = 0;
    PyObject *d = PyDict_New();
    if (d == NULL)
        return -1;
    for (long i = 0; i < 3; i++) {
        PyObject *k = PyBytes_FromFormat("k%ld", i);
        if (k == NULL || PyDict_SetItem(d, k, Py_None) < 0) {
            Py_XDECREF(k);
            Py_DECREF(d);
            return -1;
        }
        if (i == 1 && PyDict_DelItem(d, k) < 0) {
            Py_DECREF(k);
            Py_DECREF(d);
            return -1;
        }
        Py_DECREF(k);
    }
    ok = nentries(d) == 3 && PyDict_GET_SIZE(d) == 2
         && ((PyDictObject *)d)->ma_values == NULL
         && entry_key((keys_head *)((PyDictObject *)d)->ma_keys, 1) == NULL
         && entry_key((keys_head *)((PyDictObject *)d)->ma_keys, 0) != NULL
         && PyBytes_Check(entry_key((keys_head *)((PyDictObject *)d)->ma_keys, 2))
         && strcmp(PyBytes_AS_STRING(entry_key((keys_head *)((PyDictObject *)d)->ma_keys, 2)), "k2") == 0;
    Py_DECREF(d);
    return ok;
}

PyMODINIT_FUNC
PyInit__dictscan(void)
{
    int ok = layout_holds();
    if (ok < 0)
        return NULL;
    if (!ok) {
        PyErr_SetString(PyExc_ImportError,
                        "engine._dictscan: this Python's dict layout is not the one it was written for");
        return NULL;
    }
    rng_state ^= (uint64_t)(uintptr_t)&ok ^ ((uint64_t)time(NULL) << 20);
    if (rng_state == 0)
        rng_state = 0x9E3779B97F4A7C15ULL;
    return PyModule_Create(&module);
}
