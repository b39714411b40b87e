/* Decomposition-independent tree reductions over chain blocks (see reduce.h). */
#include "core/reduce.h"

#include <stdlib.h>
#include <string.h>

void hb_combine_sum(double *left, const double *right, size_t k, const void *ctx) {
    (void)ctx;
    for (size_t i = 0; i < k; i++) left[i] += right[i];
}

void hb_combine_moments(double *left, const double *right, size_t k, const void *ctx) {
    (void)ctx;
    size_t d = (k - 1) / 2;
    double na = left[0], nb = right[0];
    if (nb == 0) return;
    if (na == 0) {
        memcpy(left, right, k * sizeof *left);
        return;
    }
    double n = na + nb;
    for (size_t i = 0; i < d; i++) {
        double delta = right[1 + i] - left[1 + i];
        left[1 + i] += delta * (nb / n);
        left[1 + d + i] += right[1 + d + i] + delta * delta * (na * nb / n);
    }
    left[0] = n;
}

void hb_moments_add(double *acc, size_t d, const double *x, size_t stride) {
    double n = acc[0] + 1;
    acc[0] = n;
    for (size_t i = 0; i < d; i++) {
        double delta = x[i * stride] - acc[1 + i];
        acc[1 + i] += delta / n;
        acc[1 + d + i] += delta * (x[i * stride] - acc[1 + i]);
    }
}

void hb_combine_comoments(double *left, const double *right, size_t k, const void *ctx) {
    (void)ctx;
    size_t d = 0;
    while (1 + d + d * d < k) d++;
    double na = left[0], nb = right[0];
    if (nb == 0) return;
    if (na == 0) {
        memcpy(left, right, k * sizeof *left);
        return;
    }
    double n = na + nb, f = na * nb / n;
    double *mean = left + 1, *C = left + 1 + d;
    const double *rmean = right + 1, *rC = right + 1 + d;
    for (size_t i = 0; i < d; i++) {
        double di = rmean[i] - mean[i];
        for (size_t j = 0; j < d; j++)
            C[i * d + j] += rC[i * d + j] + di * (rmean[j] - mean[j]) * f;
    }
    for (size_t i = 0; i < d; i++) mean[i] += (rmean[i] - mean[i]) * (nb / n);
    left[0] = n;
}

void hb_comoments_add(double *acc, size_t d, const double *x, size_t stride) {
    double n = acc[0] + 1;
    acc[0] = n;
    double *mean = acc + 1, *C = acc + 1 + d;
    /* C += (n-1)/n * delta delta^T with delta = x - old mean (Welford). */
    const double f = (n - 1) / n;
    for (size_t i = 0; i < d; i++) {
        double di = x[i * stride] - mean[i];
        for (size_t j = 0; j < d; j++) C[i * d + j] += f * di * (x[j * stride] - mean[j]);
    }
    for (size_t i = 0; i < d; i++) mean[i] += (x[i * stride] - mean[i]) / n;
}

/* A tree node and where its value lives. */
typedef struct node {
    size_t level, index;
    const double *val;
} node;

typedef struct tree {
    size_t n_total, k;
    hb_combine_fn fn;
    const void *ctx;
    /* known nodes (from ranks) */
    const node *known;
    size_t n_known;
    /* local blocks, for computing nodes inside this rank's range: read from local, or
       computed by leaf when it is set */
    const double *local;
    size_t b0, n_local;
    hb_leaf_fn leaf;
    const void *leaf_ctx;
} tree;

/* Value of node (l, i) into out; uses known nodes where present, else recurses. */
static void node_value(const tree *t, size_t l, size_t i, double *out, double *scratch) {
    for (size_t j = 0; j < t->n_known; j++)
        if (t->known[j].level == l && t->known[j].index == i) {
            memcpy(out, t->known[j].val, t->k * sizeof *out);
            return;
        }
    if (l == 0) {
        /* A leaf not in the known list must be local. */
        if (t->leaf)
            t->leaf(i, out, t->leaf_ctx);
        else
            memcpy(out, t->local + (i - t->b0) * t->k, t->k * sizeof *out);
        return;
    }
    node_value(t, l - 1, 2 * i, out, scratch);
    size_t right_start = (2 * i + 1) << (l - 1);
    if (right_start >= t->n_total) return;
    node_value(t, l - 1, 2 * i + 1, scratch, scratch + t->k);
    t->fn(out, scratch, t->k, t->ctx);
}

static int reduce(MPI_Comm comm, const double *local, hb_leaf_fn leaf, const void *leaf_ctx,
                  size_t b0, size_t n_local, size_t n_total, size_t k, hb_combine_fn fn,
                  const void *ctx, double *result);

static size_t top_level(size_t n_total) {
    size_t l = 0;
    while (((size_t)1 << l) < n_total) l++;
    return l;
}

int hb_tree_reduce(MPI_Comm comm, const double *local, size_t b0, size_t n_local, size_t n_total,
                   size_t k, hb_combine_fn fn, const void *ctx, double *result) {
    return reduce(comm, local, NULL, NULL, b0, n_local, n_total, k, fn, ctx, result);
}

int hb_tree_reduce_leaves(MPI_Comm comm, hb_leaf_fn leaf, const void *leaf_ctx, size_t b0,
                          size_t n_local, size_t n_total, size_t k, hb_combine_fn fn,
                          const void *ctx, double *result) {
    return reduce(comm, NULL, leaf, leaf_ctx, b0, n_local, n_total, k, fn, ctx, result);
}

static int reduce(MPI_Comm comm, const double *local, hb_leaf_fn leaf, const void *leaf_ctx,
                  size_t b0, size_t n_local, size_t n_total, size_t k, hb_combine_fn fn,
                  const void *ctx, double *result) {
    size_t L = top_level(n_total);
    /* scratch for recursion: one k-vector per level */
    double *scratch = malloc((L + 2) * k * sizeof *scratch);
    /* Canonical cover of [b0, b0 + n_local) by maximal aligned nodes (clipped at n_total). */
    size_t max_nodes = 2 * (L + 1) + 2;
    double *packed = malloc(max_nodes * (2 + k) * sizeof *packed);
    if (!scratch || !packed) abort();
    tree t = {n_total, k, fn, ctx, NULL, 0, local, b0, n_local, leaf, leaf_ctx};
    size_t n_mine = 0, pos = b0, end = b0 + n_local;
    while (pos < end) {
        size_t l = 0;
        while (l < L) {
            size_t span = (size_t)1 << (l + 1);
            size_t stop = pos + span < n_total ? pos + span : n_total;
            if (pos % span != 0 || stop > end) break;
            l++;
        }
        double *p = packed + n_mine * (2 + k);
        p[0] = (double)l;
        p[1] = (double)(pos >> l);
        node_value(&t, l, pos >> l, p + 2, scratch);
        n_mine++;
        size_t stop = pos + ((size_t)1 << l);
        pos = stop < n_total ? stop : n_total;
    }
    int size;
    MPI_Comm_size(comm, &size);
    int cnt = (int)(n_mine * (2 + k));
    int *counts = malloc((size_t)size * sizeof *counts),
        *displs = malloc((size_t)size * sizeof *displs);
    if (!counts || !displs) abort();
    int rc = MPI_Allgather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, comm);
    size_t total = 0;
    for (int r = 0; r < size; r++) {
        displs[r] = (int)total;
        total += (size_t)counts[r];
    }
    double *all = malloc((total ? total : 1) * sizeof *all);
    if (!all) abort();
    if (rc == MPI_SUCCESS)
        rc = MPI_Allgatherv(packed, cnt, MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, comm);
    size_t n_known = total / (2 + k);
    node *known = malloc((n_known ? n_known : 1) * sizeof *known);
    if (!known) abort();
    for (size_t j = 0; j < n_known; j++) {
        const double *p = all + j * (2 + k);
        known[j] = (node){(size_t)p[0], (size_t)p[1], p + 2};
    }
    tree g = {n_total, k, fn, ctx, known, n_known, NULL, 0, 0, NULL, NULL};
    if (rc == MPI_SUCCESS && n_total > 0) node_value(&g, L, 0, result, scratch);
    free(known);
    free(all);
    free(counts);
    free(displs);
    free(packed);
    free(scratch);
    return rc == MPI_SUCCESS ? HB_OK : HB_ERR_INTERNAL;
}
