/* Checkpoint files: header + sampler blob + run doubles from rank 0, chain blocks at fixed
 * offsets from every rank (MPI-IO), written to a temporary name, synced, renamed. */
#define _GNU_SOURCE
#include "io/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t hb_ckpt_config_hash(const char *eff) {
    static const char *const skip[] = {
        "output = ", "checkpoint_every = ", "progress_every = ", NULL};
    uint64_t h = 1469598103934665603ull;
    const char *line = eff;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        int skipped = 0;
        for (int k = 0; skip[k]; k++)
            if (strncmp(line, skip[k], strlen(skip[k])) == 0) skipped = 1;
        for (size_t i = 0; !skipped && i < len; i++) {
            h ^= (unsigned char)line[i];
            h *= 1099511628211ull;
        }
        if (!skipped) h = (h ^ '\n') * 1099511628211ull;
        line = end ? end + 1 : NULL;
    }
    return h;
}

static size_t data_offset(const hb_ckpt_header *h) {
    size_t n = sizeof *h + h->blob_bytes + h->run_doubles * sizeof(double);
    return (n + 7) / 8 * 8;
}

/* All ranks agree on the worst status; the message of the lowest failing rank wins. */
static int agree(MPI_Comm comm, hb_error *e, hb_error *err) {
    int rank, mine = e->code, worst;
    MPI_Comm_rank(comm, &rank);
    MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, comm);
    if (worst == HB_OK) return HB_OK;
    int who = mine == worst ? rank : 1 << 30, root;
    MPI_Allreduce(&who, &root, 1, MPI_INT, MPI_MIN, comm);
    MPI_Bcast(e->msg, sizeof e->msg, MPI_CHAR, root, comm);
    e->code = worst;
    *err = *e;
    return worst;
}

static void mpi_fail(hb_error *e, int rc, const char *what, const char *path) {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, s, &len);
    hb_fail(e, HB_ERR_IO, "checkpoint %s: cannot %s: %s", path, what, s);
}

/* A datatype of one block (per_block doubles), committed; MPI_DATATYPE_NULL on failure. */
static MPI_Datatype block_type(size_t per_block) {
    MPI_Datatype t = MPI_DATATYPE_NULL;
    if (per_block > (size_t)1 << 30 || MPI_Type_contiguous((int)per_block, MPI_DOUBLE, &t) ||
        MPI_Type_commit(&t))
        return MPI_DATATYPE_NULL;
    return t;
}

int hb_ckpt_write(MPI_Comm comm, const char *path, const hb_ckpt_header *h, const void *blob,
                  const double *run, const double *blocks, size_t b0, size_t nb_local,
                  hb_error *err) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    hb_error e;
    hb_error_clear(&e);
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp", path) < 0) abort();
    if (rank == 0) unlink(tmp);
    MPI_Barrier(comm);
    MPI_File f;
    int rc = MPI_File_open(comm, tmp, MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &f);
    if (rc != MPI_SUCCESS) {
        mpi_fail(&e, rc, "create", tmp);
        free(tmp);
        return agree(comm, &e, err);
    }
    MPI_File_set_errhandler(f, MPI_ERRORS_RETURN);
    if (rank == 0) {
        MPI_Status st;
        rc = MPI_File_write_at(f, 0, h, (int)sizeof *h, MPI_BYTE, &st);
        if (rc == MPI_SUCCESS && h->blob_bytes)
            rc = MPI_File_write_at(f, (MPI_Offset)sizeof *h, blob, (int)h->blob_bytes, MPI_BYTE,
                                   &st);
        if (rc == MPI_SUCCESS && h->run_doubles)
            rc = MPI_File_write_at(f, (MPI_Offset)(sizeof *h + h->blob_bytes), run,
                                   (int)h->run_doubles, MPI_DOUBLE, &st);
        if (rc != MPI_SUCCESS) mpi_fail(&e, rc, "write the header", tmp);
    }
    MPI_Datatype bt = block_type(h->per_block);
    if (bt == MPI_DATATYPE_NULL) hb_fail(&e, HB_ERR_IO, "checkpoint %s: blocks too large", tmp);
    if (agree(comm, &e, err) == HB_OK) {
        MPI_Offset off = (MPI_Offset)(data_offset(h) + b0 * h->per_block * sizeof(double));
        MPI_Status st;
        rc = MPI_File_write_at_all(f, off, nb_local ? blocks : (const void *)h, (int)nb_local, bt,
                                   &st);
        if (rc != MPI_SUCCESS) mpi_fail(&e, rc, "write the chain states", tmp);
        if (e.code == HB_OK && (rc = MPI_File_sync(f)) != MPI_SUCCESS)
            mpi_fail(&e, rc, "sync", tmp);
    }
    if (bt != MPI_DATATYPE_NULL) MPI_Type_free(&bt);
    MPI_File_close(&f);
    if (agree(comm, &e, err) == HB_OK && rank == 0) {
        /* the new checkpoint replaces the old one atomically, then the directory entry is
           made durable */
        if (rename(tmp, path) != 0) {
            hb_fail(&e, HB_ERR_IO, "checkpoint %s: cannot rename %s: %s", path, tmp,
                    strerror(errno));
        } else {
            char *dcopy = strdup(path);
            int dfd = dcopy ? open(dirname(dcopy), O_RDONLY | O_DIRECTORY) : -1;
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            free(dcopy);
        }
    }
    if (e.code != HB_OK && rank == 0) unlink(tmp);
    free(tmp);
    return agree(comm, &e, err);
}

int hb_ckpt_read_head(MPI_Comm comm, const char *path, hb_ckpt_header *h, void **blob, double **run,
                      hb_error *err) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    hb_error e;
    hb_error_clear(&e);
    *blob = NULL;
    *run = NULL;
    memset(h, 0, sizeof *h);
    if (rank == 0) {
        FILE *f = fopen(path, "rb");
        if (!f) {
            hb_fail(&e, HB_ERR_IO, "--resume: cannot open the checkpoint %s: %s", path,
                    strerror(errno));
        } else if (fread(h, sizeof *h, 1, f) != 1 || memcmp(h->magic, HB_CKPT_MAGIC, 8) != 0 ||
                   h->version != 1) {
            hb_fail(&e, HB_ERR_USAGE, "--resume: %s is not a heartbeat checkpoint", path);
        } else {
            fseek(f, 0, SEEK_END);
            long size = ftell(f);
            size_t need = data_offset(h) + h->nb_total * h->per_block * sizeof(double);
            if (size < 0 || (size_t)size < need || h->blob_bytes > ((size_t)1 << 34) ||
                h->run_doubles > ((size_t)1 << 34))
                hb_fail(&e, HB_ERR_USAGE,
                        "--resume: the checkpoint %s is truncated (%ld of %zu bytes)", path, size,
                        need);
        }
        if (f) fclose(f);
    }
    if (agree(comm, &e, err)) return err->code;
    MPI_Bcast(h, (int)sizeof *h, MPI_BYTE, 0, comm);
    *blob = malloc(h->blob_bytes ? h->blob_bytes : 1);
    *run = malloc((h->run_doubles ? h->run_doubles : 1) * sizeof **run);
    if (!*blob || !*run) abort();
    if (rank == 0) {
        FILE *f = fopen(path, "rb");
        int ok = f && fseek(f, (long)sizeof *h, SEEK_SET) == 0 &&
                 fread(*blob, 1, h->blob_bytes, f) == h->blob_bytes &&
                 fread(*run, sizeof **run, h->run_doubles, f) == h->run_doubles;
        if (!ok) hb_fail(&e, HB_ERR_IO, "--resume: cannot read the checkpoint %s", path);
        if (f) fclose(f);
    }
    if (agree(comm, &e, err)) return err->code;
    if (h->blob_bytes) MPI_Bcast(*blob, (int)h->blob_bytes, MPI_BYTE, 0, comm);
    if (h->run_doubles) MPI_Bcast(*run, (int)h->run_doubles, MPI_DOUBLE, 0, comm);
    return HB_OK;
}

int hb_ckpt_read_blocks(MPI_Comm comm, const char *path, const hb_ckpt_header *h, double *blocks,
                        size_t b0, size_t nb_local, hb_error *err) {
    hb_error e;
    hb_error_clear(&e);
    MPI_File f;
    int rc = MPI_File_open(comm, path, MPI_MODE_RDONLY, MPI_INFO_NULL, &f);
    if (rc != MPI_SUCCESS) {
        mpi_fail(&e, rc, "open", path);
        return agree(comm, &e, err);
    }
    MPI_File_set_errhandler(f, MPI_ERRORS_RETURN);
    MPI_Datatype bt = block_type(h->per_block);
    if (bt == MPI_DATATYPE_NULL) {
        hb_fail(&e, HB_ERR_IO, "checkpoint %s: blocks too large", path);
    } else {
        MPI_Offset off = (MPI_Offset)(data_offset(h) + b0 * h->per_block * sizeof(double));
        MPI_Status st;
        double dummy;
        rc = MPI_File_read_at_all(f, off, nb_local ? blocks : &dummy, (int)nb_local, bt, &st);
        if (rc != MPI_SUCCESS) mpi_fail(&e, rc, "read the chain states", path);
        MPI_Type_free(&bt);
    }
    MPI_File_close(&f);
    return agree(comm, &e, err);
}
