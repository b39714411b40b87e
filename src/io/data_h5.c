/* Model data from an HDF5 file: every numeric dataset in the root group is one field
 * (scalar dataspace = scalar, rank k = k-dimensional array, row-major as h5py writes). */
#include "io/data_impl.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

typedef struct visit_ctx {
    hb_data *d;
    hb_error *err;
    int rc;
} visit_ctx;

static const char *class_name(H5T_class_t c) {
    switch (c) {
    case H5T_STRING:
        return "a string";
    case H5T_COMPOUND:
        return "a compound type";
    case H5T_ENUM:
        return "an enum (bool?)";
    case H5T_ARRAY:
        return "an array type";
    case H5T_VLEN:
        return "a variable-length type";
    case H5T_OPAQUE:
        return "an opaque type";
    case H5T_REFERENCE:
        return "a reference";
    case H5T_BITFIELD:
        return "a bitfield";
    default:
        return "not a number type";
    }
}

static void read_dataset(hb_data_var *v, hid_t ds) {
    hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
    if (type < 0 || space < 0) {
        hb_data__problem(v, "unreadable HDF5 dataset");
        goto done;
    }
    H5T_class_t cls = H5Tget_class(type);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        hb_data__problem(v, "dataset is %s, not numeric", class_name(cls));
        goto done;
    }
    H5S_class_t sc = H5Sget_simple_extent_type(space);
    if (sc == H5S_NULL) {
        hb_data__problem(v, "dataset has no dataspace (H5S_NULL)");
        goto done;
    }
    int rank = sc == H5S_SCALAR ? 0 : H5Sget_simple_extent_ndims(space);
    if (rank < 0 || rank > HB_DATA_MAX_DIM) {
        hb_data__problem(v, "dataset has %d dimensions (at most %d)", rank, HB_DATA_MAX_DIM);
        goto done;
    }
    hsize_t dims[HB_DATA_MAX_DIM];
    if (rank > 0) H5Sget_simple_extent_dims(space, dims, NULL);
    v->ndim = rank;
    v->n = 1;
    for (int a = 0; a < rank; a++) {
        v->dims[a] = (size_t)dims[a];
        v->n *= (size_t)dims[a];
    }
    v->v = malloc((v->n ? v->n : 1) * sizeof(double));
    if (!v->v) abort();
    if (v->n > 0 && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v->v) < 0)
        hb_data__problem(v, "cannot read the dataset as numbers");
done:
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
}

static herr_t visit(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    visit_ctx *ctx = op;
    (void)info;
    hid_t obj = H5Oopen(g, name, H5P_DEFAULT);
    if (obj < 0) return 0; /* dangling link: not a field */
    if (H5Iget_type(obj) == H5I_DATASET) {
        hb_data_var *v = hb_data__add(ctx->d, name, ctx->err);
        if (!v) {
            ctx->rc = HB_ERR_MODEL;
            H5Oclose(obj);
            return 1;
        }
        read_dataset(v, obj);
    }
    H5Oclose(obj);
    return 0;
}

int hb_data__load_h5(hb_data *d, hb_error *err) {
    /* HDF5 prints its error stack by default; our messages say what went wrong. */
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rc = HB_OK;
    hid_t f = H5Fopen(d->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        rc = hb_fail(err, HB_ERR_MODEL, "%s: has an HDF5 signature but cannot be read as HDF5",
                     d->path);
    } else {
        visit_ctx ctx = {d, err, HB_OK};
        if (H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, NULL, visit, &ctx) < 0 && ctx.rc == HB_OK)
            ctx.rc = hb_fail(err, HB_ERR_MODEL, "%s: cannot list the datasets of the HDF5 file",
                             d->path);
        rc = ctx.rc;
        H5Fclose(f);
    }
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    return rc;
}
