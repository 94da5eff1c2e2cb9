/* engine._geo: the inner loop of a geo search, in C.
 *
 * ``scan(pairs, box, cx, cy, p1, p2, found, limit)`` reads the (score,
 * member) pairs of one geohash cell and appends ``(metres, member, score,
 * longitude, latitude)`` to the list ``found`` for each point within the
 * search shape: a radius ``p1`` (metres) around (cx, cy), or, when ``box``
 * is true, a box ``p1`` wide and ``p2`` high (metres) centred there. It stops
 * once ``found`` holds ``limit`` entries (0: no limit).
 *
 * ``encode(lon, lat)`` is geohash.encode at 26 bits a coordinate (GEOADD's score).
 * ``ranges(lon, lat, radius_m, half_width_m, half_height_m)`` is
 * geohash.search_ranges_python: the score ranges of the cells a search reads.
 * ``items(found, to_m, withdist, withhash, withcoord, raw)`` is
 * geohash.items_python: the reply items of a search (``raw``: the reply type
 * for RESP3's pre-encoded coordinates, None in RESP2).
 *
 * Both compute exactly what engine/geohash.py computes (decode, distance,
 * box_distance, search_ranges_python), operation for operation, with the same C library
 * functions: the Python code is the reference and the fallback when this
 * module is not built, and tests check that both give the same results.
 * Built with -ffp-contract=off so that no multiply-add is fused.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

#define LON_MIN (-180.0)
#define LON_MAX 180.0
#define LAT_MIN (-85.05112878)
#define LAT_MAX 85.05112878
#define EARTH_RADIUS 6372797.560856
#define CELLS 67108864.0 /* 2**26 */

static double D_R;

static uint64_t
to_u64(double s)
{
    /* (uint64_t)s as gcc's x86-64 code gives it (see geohash.u64). */
    const double two63 = 9223372036854775808.0;
    if (!(s >= two63)) {
        if (s != s || s < -two63)
            return (uint64_t)1 << 63;
        return (uint64_t)(int64_t)s;
    }
    double t = s - two63;
    if (t >= two63)
        return 0;
    return (uint64_t)(int64_t)t ^ ((uint64_t)1 << 63);
}

static uint32_t
squash(uint64_t v)
{
    v &= 0x5555555555555555ULL;
    v = (v | (v >> 1)) & 0x3333333333333333ULL;
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0FULL;
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FFULL;
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFFULL;
    return (uint32_t)((v | (v >> 16)) & 0xFFFFFFFFULL);
}

static void
decode(double score, double *x, double *y)
{
    uint64_t bits = to_u64(score);
    uint32_t ilat = squash(bits), ilon = squash(bits >> 1);
    uint32_t ilat1 = ilat + 1, ilon1 = ilon + 1; /* wrapping, as Redis's */
    double a = LON_MIN + ((double)ilon / CELLS) * (LON_MAX - LON_MIN);
    double b = LON_MIN + ((double)ilon1 / CELLS) * (LON_MAX - LON_MIN);
    double v = (a + b) / 2;
    if (v > LON_MAX)
        v = LON_MAX;
    else if (v < LON_MIN)
        v = LON_MIN;
    *x = v;
    a = LAT_MIN + ((double)ilat / CELLS) * (LAT_MAX - LAT_MIN);
    b = LAT_MIN + ((double)ilat1 / CELLS) * (LAT_MAX - LAT_MIN);
    v = (a + b) / 2;
    if (v > LAT_MAX)
        v = LAT_MAX;
    else if (v < LAT_MIN)
        v = LAT_MIN;
    *y = v;
}

static double
distance(double lon1, double lat1, double lon2, double lat2)
{
    double v = sin((lon2 * D_R - lon1 * D_R) / 2);
    if (v == 0.0)
        return EARTH_RADIUS * fabs(lat2 * D_R - lat1 * D_R);
    double a1 = lat1 * D_R, a2 = lat2 * D_R;
    double u = sin((a2 - a1) / 2);
    return 2.0 * EARTH_RADIUS * asin(sqrt(u * u + cos(a1) * cos(a2) * v * v));
}

/* --- the cells a search reads (geohash.search_ranges_python, in C) ------- */

#define MERCATOR_MAX 20037726.37
#define EVEN 0x5555555555555555ULL
#define ODD 0xAAAAAAAAAAAAAAAAULL

static uint64_t
spread(uint32_t x)
{
    uint64_t v = x;
    v = (v | (v << 16)) & 0x0000FFFF0000FFFFULL;
    v = (v | (v << 8)) & 0x00FF00FF00FF00FFULL;
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0FULL;
    v = (v | (v << 2)) & 0x3333333333333333ULL;
    return (v | (v << 1)) & EVEN;
}

static uint64_t
encode(double lon, double lat, int step)
{
    double scale = (double)(1ULL << step);
    uint32_t ilat = (uint32_t)((lat - LAT_MIN) / (LAT_MAX - LAT_MIN) * scale);
    uint32_t ilon = (uint32_t)((lon - LON_MIN) / (LON_MAX - LON_MIN) * scale);
    return spread(ilat) | (spread(ilon) << 1);
}

/* The cell: [0] lon min, [1] lon max, [2] lat min, [3] lat max. */
static void
area(uint64_t bits, int step, double *a)
{
    uint32_t ilat = squash(bits), ilon = squash(bits >> 1);
    uint32_t ilat1 = ilat + 1, ilon1 = ilon + 1;
    double scale = (double)(1ULL << step);
    a[0] = LON_MIN + ((double)ilon / scale) * (LON_MAX - LON_MIN);
    a[1] = LON_MIN + ((double)ilon1 / scale) * (LON_MAX - LON_MIN);
    a[2] = LAT_MIN + ((double)ilat / scale) * (LAT_MAX - LAT_MIN);
    a[3] = LAT_MIN + ((double)ilat1 / scale) * (LAT_MAX - LAT_MIN);
}

static int
estimate_steps(double r, double lat)
{
    if (r == 0)
        return 26;
    int step = 1;
    while (r < MERCATOR_MAX) {
        r *= 2;
        step++;
    }
    step -= 2;
    if (lat > 66 || lat < -66) {
        step--;
        if (lat > 80 || lat < -80)
            step--;
    }
    return step < 1 ? 1 : step > 26 ? 26 : step;
}

static uint64_t
move(uint64_t bits, int step, int dx, int dy)
{
    int shift = 64 - step * 2;
    if (dx) {
        uint64_t x = bits & ODD, y = bits & EVEN, zz = EVEN >> shift;
        x = dx > 0 ? x + zz + 1 : (x | zz) - (zz + 1);
        bits = (x & (ODD >> shift)) | y;
    }
    if (dy) {
        uint64_t x = bits & ODD, y = bits & EVEN, zz = ODD >> shift;
        y = dy > 0 ? y + zz + 1 : (y | zz) - (zz + 1);
        bits = x | (y & (EVEN >> shift));
    }
    return bits;
}

static const int AROUND[8][2] = {{0, 1}, {0, -1}, {1, 0}, {-1, 0}, {1, 1}, {-1, 1}, {1, -1}, {-1, -1}};

static void
cells(double lon, double lat, int step, uint64_t *bits, uint64_t *around)
{
    *bits = encode(lon, lat, step);
    for (int i = 0; i < 8; i++)
        around[i] = move(*bits, step, AROUND[i][0], AROUND[i][1]);
}

static PyObject *
encode_point(PyObject *self, PyObject *args)
{
    double lon, lat;
    if (!PyArg_ParseTuple(args, "dd", &lon, &lat))
        return NULL;
    return PyLong_FromUnsignedLongLong(encode(lon, lat, 26));
}

static PyObject *
ranges(PyObject *self, PyObject *args)
{
    double lon, lat, radius, hw, hh;
    if (!PyArg_ParseTuple(args, "ddddd", &lon, &lat, &radius, &hw, &hh))
        return NULL;
    double lat_delta = hh / EARTH_RADIUS / D_R;
    double top = hw / EARTH_RADIUS / cos((lat + lat_delta) * D_R) / D_R;
    double bottom = hw / EARTH_RADIUS / cos((lat - lat_delta) * D_R) / D_R;
    double d = lat < 0 ? bottom : top;
    double min_lon = lon - d, min_lat = lat - lat_delta, max_lon = lon + d, max_lat = lat + lat_delta;
    int step = estimate_steps(radius, lat);
    uint64_t bits, around[8];
    double n[4], s[4], e[4], w[4], c[4];
    cells(lon, lat, step, &bits, around);
    area(around[0], step, n);
    area(around[1], step, s);
    area(around[2], step, e);
    area(around[3], step, w);
    if (step > 1 && (n[3] < max_lat || s[2] > min_lat || e[1] < max_lon || w[0] > min_lon)) {
        step--;
        cells(lon, lat, step, &bits, around);
    }
    int keep[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    if (step >= 2) {
        area(bits, step, c);
        if (c[2] < min_lat)
            keep[1] = keep[6] = keep[7] = 0;
        if (c[3] > max_lat)
            keep[0] = keep[4] = keep[5] = 0;
        if (c[0] < min_lon)
            keep[3] = keep[5] = keep[7] = 0;
        if (c[1] > max_lon)
            keep[2] = keep[4] = keep[6] = 0;
    }
    int shift = 52 - step * 2;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    int have_last = 0;
    uint64_t last = 0;
    for (int i = -1; i < 8; i++) {
        uint64_t b = i < 0 ? bits : around[i];
        if (i >= 0) {
            if (!keep[i] || (have_last && b == last))
                continue;
            have_last = 1;
            last = b;
        }
        PyObject *t = Py_BuildValue("(KK)", (unsigned long long)(b << shift),
                                    (unsigned long long)((b + 1) << shift));
        if (t == NULL || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(t);
    }
    return out;
}

static PyObject *
scan(PyObject *self, PyObject *args)
{
    PyObject *pairs, *found;
    int box;
    double cx, cy, p1, p2;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "O!pddddO!n", &PyList_Type, &pairs, &box, &cx, &cy, &p1, &p2,
                          &PyList_Type, &found, &limit))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(pairs);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(pairs, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "pairs must be (score, member) tuples");
            return NULL;
        }
        PyObject *so = PyTuple_GET_ITEM(pair, 0);
        double s = PyFloat_AsDouble(so);
        if (s == -1.0 && PyErr_Occurred())
            return NULL;
        double x, y, d;
        decode(s, &x, &y);
        if (box) {
            if (EARTH_RADIUS * fabs(cy * D_R - y * D_R) > p2 / 2)
                continue;
            if (distance(x, y, cx, y) > p1 / 2)
                continue;
            d = distance(cx, cy, x, y);
        } else {
            d = distance(cx, cy, x, y);
            if (!(d <= p1))
                continue;
        }
        PyObject *t = Py_BuildValue("(dOOdd)", d, PyTuple_GET_ITEM(pair, 1), so, x, y);
        if (t == NULL)
            return NULL;
        int r = PyList_Append(found, t);
        Py_DECREF(t);
        if (r < 0)
            return NULL;
        if (limit && PyList_GET_SIZE(found) >= limit)
            break;
    }
    Py_RETURN_NONE;
}

/* --- replies with WITHDIST / WITHHASH / WITHCOORD ---------------------------- */

static Py_ssize_t
coord_text(char *buf, size_t size, double v)
{
    /* %.17Lf of the double (exact, as glibc prints it), trailing zeros and dot trimmed. */
    int n = snprintf(buf, size, "%.17f", v);
    while (n > 0 && buf[n - 1] == '0')
        n--;
    if (n > 0 && buf[n - 1] == '.')
        n--;
    return n;
}

static PyObject *
items(PyObject *self, PyObject *args)
{
    PyObject *found, *raw;
    double to_m;
    int withdist, withhash, withcoord;
    if (!PyArg_ParseTuple(args, "O!dpppO", &PyList_Type, &found, &to_m, &withdist, &withhash, &withcoord, &raw))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(found);
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    char a[64], b[64], buf[160];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyList_GET_ITEM(found, i);
        if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) != 5) {
            PyErr_SetString(PyExc_TypeError, "found must hold (metres, member, score, lon, lat)");
            goto fail;
        }
        PyObject *item = PyList_New(0);
        if (item == NULL)
            goto fail;
        PyList_SET_ITEM(out, i, item);
        if (PyList_Append(item, PyTuple_GET_ITEM(p, 1)) < 0)
            goto fail;
        PyObject *v;
        if (withdist) {
            double d = PyFloat_AsDouble(PyTuple_GET_ITEM(p, 0)) / to_m;
            long long q = d == 0 ? 0 : llrint(d * 10000.0); /* geohash.format_distance */
            int len = snprintf(buf, sizeof buf, "%s%lld.%04lld", q < 0 ? "-" : "", llabs(q) / 10000, llabs(q) % 10000);
            v = PyBytes_FromStringAndSize(buf, len);
            if (v == NULL || PyList_Append(item, v) < 0)
                goto fail_v;
            Py_DECREF(v);
        }
        if (withhash) {
            v = PyLong_FromDouble(PyFloat_AsDouble(PyTuple_GET_ITEM(p, 2)));
            if (v == NULL || PyList_Append(item, v) < 0)
                goto fail_v;
            Py_DECREF(v);
        }
        if (withcoord) {
            Py_ssize_t la = coord_text(a, sizeof a, PyFloat_AsDouble(PyTuple_GET_ITEM(p, 3)));
            Py_ssize_t lb = coord_text(b, sizeof b, PyFloat_AsDouble(PyTuple_GET_ITEM(p, 4)));
            if (raw != Py_None) { /* RESP3: two doubles, pre-encoded */
                int len = snprintf(buf, sizeof buf, "*2\r\n,%.*s\r\n,%.*s\r\n", (int)la, a, (int)lb, b);
                PyObject *t = PyBytes_FromStringAndSize(buf, len);
                if (t == NULL)
                    goto fail;
                v = PyObject_CallOneArg(raw, t);
                Py_DECREF(t);
            } else {
                v = Py_BuildValue("[y#y#]", a, la, b, lb);
            }
            if (v == NULL || PyList_Append(item, v) < 0)
                goto fail_v;
            Py_DECREF(v);
        }
        continue;
    fail_v:
        Py_XDECREF(v);
        goto fail;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "Append the points of one cell within a radius or box to a list."},
    {"encode", encode_point, METH_VARARGS, "The 52-bit score of a point (checked to be within the limits)."},
    {"ranges", ranges, METH_VARARGS, "The score ranges [min, max) a search reads, in order."},
    {"items", items, METH_VARARGS, "The reply items of a search with WITHDIST, WITHHASH or WITHCOORD."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "engine._geo", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__geo(void)
{
    D_R = M_PI / 180.0;
    return PyModule_Create(&module);
}
