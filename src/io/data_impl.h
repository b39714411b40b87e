/* Inside the data layer: the in-memory form both loaders (JSON, HDF5) fill in. */
#ifndef HB_IO_DATA_IMPL_H
#define HB_IO_DATA_IMPL_H

#include "io/data.h"

typedef struct hb_data_var {
    char *name;
    int ndim; /* 0 = scalar */
    size_t dims[HB_DATA_MAX_DIM];
    size_t n;      /* product of dims */
    double *v;     /* n values, row-major */
    char *problem; /* why the field is unusable, or NULL */
} hb_data_var;

struct hb_data {
    char *path;
    const char *format; /* "JSON" or "HDF5" */
    hb_data_var *vars;
    size_t n, cap;
};

/* Append a field; NULL (and an error) if the name is already taken. */
hb_data_var *hb_data__add(hb_data *d, const char *name, hb_error *err);
/* Record why a field is unusable (printf-style; the first reason is kept). */
void hb_data__problem(hb_data_var *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fill d from the HDF5 file d->path (data_h5.c). */
int hb_data__load_h5(hb_data *d, hb_error *err);

#endif
