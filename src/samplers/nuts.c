/* NUTS exactly as Stan's base_nuts (ALGORITHMS.md §6.3): multinomial sampling within
 * subtrees, biased progressive sampling between the old trajectory and a new subtree, the
 * generalised U-turn criterion with the extra checks across merged subtrees (Stan 2.21),
 * divergence at an energy error above max_delta_h. Warmup is Stan's windowed adaptation
 * (§6.5-6.6), either per chain as Stan does it ([nuts] adapt = per_chain) or in lock-step
 * with the step size and metric pooled over all chains of all ranks (adapt = pooled).
 *
 * Chains diverge in control flow, so each lane of a batch runs its own transition on
 * contiguous vectors with the model's per-chain entry; the run loop balances batches over
 * threads. Every random number is a function of (seed, chain, iteration, purpose), so the
 * draws do not depend on ranks or threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

#include "adapt/adapt.h"
#include "core/rng.h"
#include "samplers/sampler.h"

enum { L = HB_LANES };
#define HEUR_AFTER (HB_RNG_STEPSIZE_INIT + 0x100000u)

enum { ST_LP, ST_ACCEPT, ST_STEP, ST_DEPTH, ST_DIVERGING, ST_ENERGY, N_STATS };
static const hb_stat_spec nuts_stats[N_STATS] = {
    {"lp", HB_STAT_F64},         {"acceptance_rate", HB_STAT_F64}, {"step_size", HB_STAT_F64},
    {"tree_depth", HB_STAT_I64}, {"diverging", HB_STAT_BOOL},      {"energy", HB_STAT_F64},
};

/* Per-chain state (adapt = per_chain), rows of hb_batch.state: the nominal step size, the
   dual-averaging state, the Welford count, then inverse metric, Welford mean and M2. */
enum { S_EPS, S_MU, S_T, S_SBAR, S_XBAR, S_WN, S_HEAD };

/* Pooled reduction: accept sum, chains, heuristic log step sum and count, then (per_chain)
   the sum of step sizes and of inverse metrics for the report. */
enum { R_ACC, R_N, R_LOGEPS, R_NHEUR, R_EPS, R_M };

typedef struct nuts {
    size_t dim;
    long warmup;
    int per_chain, metric_diag, eps_fixed, max_depth;
    double max_dh, jitter, delta, eps_init;
    hb_windows win;
    /* pooled adaptation (adapt = pooled) */
    double eps;
    hb_dual_avg da;
    double *m;     /* inverse metric [dim] */
    int need_heur; /* the next warmup step runs Stan's init_stepsize on every chain */
    /* report and progress: mean acceptance; per_chain: mean step size and metric */
    double acc_mean, rep_eps;
    double *rep_m;
} nuts;

/* ---- one chain ------------------------------------------------------------------------- */

/* A phase-space point: position, momentum, gradient, log density. */
typedef struct point {
    double *q, *p, *g;
    double lp;
} point;

static void copy_point(point *dst, const point *src, size_t d) {
    memcpy(dst->q, src->q, d * sizeof *dst->q);
    memcpy(dst->p, src->p, d * sizeof *dst->p);
    memcpy(dst->g, src->g, d * sizeof *dst->g);
    dst->lp = src->lp;
}

static double kinetic(const double *m, const double *p, size_t d) {
    double k = 0;
    for (size_t i = 0; i < d; i++) k += m[i] * p[i] * p[i];
    return 0.5 * k;
}

/* H = -lp + T(p); NaN maps to +inf (Stan's tree builder). */
static double energy(const point *z, const double *m, size_t d) {
    double h = -z->lp + kinetic(m, z->p, d);
    return isnan(h) ? INFINITY : h;
}

/* One leapfrog step of signed size e in place (ALGORITHMS.md §6.1; the step-size heuristic);
   returns H at the new point. */
static double leapfrog(const hb_model *model, const double *m, point *z, double e, size_t d) {
    const double he = 0.5 * e;
    double *q = z->q, *p = z->p, *g = z->g;
#pragma omp simd
    for (size_t i = 0; i < d; i++) {
        p[i] += he * g[i];
        q[i] += e * m[i] * p[i];
    }
    z->lp = hb_model_eval_one(model, q, g);
    double k = 0;
#pragma omp simd reduction(+ : k)
    for (size_t i = 0; i < d; i++) {
        p[i] += he * g[i];
        k += m[i] * p[i] * p[i];
    }
    double h = -z->lp + 0.5 * k;
    return isnan(h) ? INFINITY : h;
}

static double log_sum_exp(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

/* The tree works on nodes of a per-chain pool instead of copies: a node is one phase-space
   point (q, p, g of NODE_VECS * stride doubles, and lp), reference-counted by the roles that
   hold it (the selected sample, a subtree's proposal, a subtree's first and last point). Where
   Stan copies a point (z_propose = z, p_sharp_end = p_sharp_beg, z_fwd = z, ...) the tree takes
   a reference; the integrator writes each leapfrog step into a fresh node. p# = M p is never
   stored: the U-turn products recompute m[i] * p[i], which is the value Stan stores. At most
   3 nodes per recursion level are held (the first half's proposal and ends) plus the
   trajectory's sample and four ends, so the pool has POOL_NODES(max_depth). */
enum { NODE_VECS = 3 };
#define POOL_NODES(max_depth) (3 * (size_t)(max_depth) + 8)
#define MAX_POOL              POOL_NODES(30)

typedef struct tree {
    const hb_model *model;
    size_t d, stride;
    const double *m; /* inverse metric */
    double eps, H0, max_dh;
    int n_leapfrog, divergent;
    double sum_metro;
    hb_rng_stream *rng;
    double *pool;  /* POOL_NODES nodes of NODE_VECS * stride */
    double *rho_l; /* 2 rho vectors per recursion level */
    double lp[MAX_POOL];
    int ref[MAX_POOL], free_[MAX_POOL], n_free;
} tree;

static inline double *node_q(const tree *t, int n) {
    return t->pool + (size_t)n * NODE_VECS * t->stride;
}
static inline double *node_p(const tree *t, int n) {
    return node_q(t, n) + t->stride;
}
static inline double *node_g(const tree *t, int n) {
    return node_q(t, n) + 2 * t->stride;
}

static inline int node_new(tree *t) {
    if (t->n_free == 0) abort(); /* cannot happen: POOL_NODES bounds the live nodes */
    return t->free_[--t->n_free];
}
static inline void node_put(tree *t, int n) {
    if (--t->ref[n] == 0) t->free_[t->n_free++] = n;
}

/* A built subtree: its proposal, first and last node (each holding one reference), the sum of
   its momenta (rho: a node's p for a single step, else a level vector) and its log weight. */
typedef struct subtree {
    int prop, beg, end;
    const double *rho;
    double lsw;
} subtree;

/* The second half of the momentum step at b (p += he g) and the summed m p^2. */
static double half_kick(double *restrict pb, const double *restrict gb, const double *restrict m,
                        double he, size_t d) {
    double k = 0;
#pragma omp simd reduction(+ : k)
    for (size_t i = 0; i < d; i++) {
        pb[i] += he * gb[i];
        k += m[i] * pb[i] * pb[i];
    }
    return k;
}

/* One leapfrog step of signed size e from node a into node b: the same arithmetic as
   leapfrog() with hb_model_eval_one, whose check of the gradient is deferred. A non-finite
   gradient component makes the summed m p^2 non-finite (p = p_half + he g with he != 0,
   m > 0), so the gradient only needs checking when lp or that sum is not finite; an invalid
   point then gets hb_model_eval_one's lp = -inf and zero gradient and its momentum is
   recomputed from it. Returns H at b. */
static double leapfrog_to(tree *t, int a, int b, double e) {
    const size_t d = t->d;
    const double he = 0.5 * e;
    const double *restrict m = t->m;
    const double *restrict qa = node_q(t, a), *restrict pa = node_p(t, a),
                           *restrict ga = node_g(t, a);
    double *restrict qb = node_q(t, b), *restrict pb = node_p(t, b), *restrict gb = node_g(t, b);
#pragma omp simd
    for (size_t i = 0; i < d; i++) {
        double p = pa[i] + he * ga[i];
        pb[i] = p;
        qb[i] = qa[i] + e * m[i] * p;
    }
    const hb_model *model = t->model;
    double lp = -INFINITY;
    const int rc = model->vt->logp_grad(model->impl, qb, &lp, gb);
    double k = half_kick(pb, gb, m, he, d);
    if (!(rc == 0 && isfinite(lp) && isfinite(k))) {
        int ok = rc == 0 && isfinite(lp);
        for (size_t i = 0; ok && i < d; i++) ok = isfinite(gb[i]);
        if (!ok) {
            lp = -INFINITY;
            for (size_t i = 0; i < d; i++) {
                gb[i] = 0.0;
                pb[i] = pa[i] + he * ga[i];
            }
            k = half_kick(pb, gb, m, he, d);
        }
    }
    t->lp[b] = lp;
    double h = -lp + 0.5 * k;
    return isnan(h) ? INFINITY : h;
}

/* Merging two adjacent subtrees A (first in time) and B: rho_out = rho_a + rho_b, and Stan's
   generalised U-turn criterion on the merged tree together with the two extra checks
   (Stan 2.21) in one pass:
     (p#_end . rho) > 0, (p#_beg . rho) > 0 for rho = rho_a + rho_b, for rho_a + p_b_beg
     (ends p#_beg, p#_b_beg) and for rho_b + p_a_end (ends p#_a_end, p#_end).
   Each dot product is summed as Stan's criterion sums it in the scalar code (the simd
   reduction of dot()); all six are computed, which changes no result. */
static int merge_uturn(const double *restrict m, const double *restrict rho_a,
                       const double *restrict rho_b, const double *restrict p_beg,
                       const double *restrict p_end, const double *restrict p_a_end,
                       const double *restrict p_b_beg, double *restrict rho_out, size_t d) {
    double e1 = 0, b1 = 0, e2 = 0, b2 = 0, e3 = 0, b3 = 0;
#pragma omp simd reduction(+ : e1, b1, e2, b2, e3, b3)
    for (size_t i = 0; i < d; i++) {
        const double sb = m[i] * p_beg[i], se = m[i] * p_end[i];
        const double r = rho_a[i] + rho_b[i];
        const double r2 = rho_a[i] + p_b_beg[i], r3 = rho_b[i] + p_a_end[i];
        rho_out[i] = r;
        e1 += se * r;
        b1 += sb * r;
        e2 += (m[i] * p_b_beg[i]) * r2;
        b2 += sb * r2;
        e3 += se * r3;
        b3 += (m[i] * p_a_end[i]) * r3;
    }
    return e1 > 0 && b1 > 0 && e2 > 0 && b2 > 0 && e3 > 0 && b3 > 0;
}

/* merge_uturn when both subtrees are single points A, B (rho_a = p_beg = p_a_end = p_A,
   rho_b = p_end = p_b_beg = p_B): the three sums rho_a + rho_b, rho_a + p_b_beg and
   rho_b + p_a_end are the same numbers p_A + p_B, so e2 = e3 = e1 and b2 = b3 = b1 bitwise;
   only e1 and b1 are computed (in the same simd reduction). */
static int merge_uturn_pair(const double *restrict m, const double *restrict pa,
                            const double *restrict pb, double *restrict rho_out, size_t d) {
    double e1 = 0, b1 = 0;
#pragma omp simd reduction(+ : e1, b1)
    for (size_t i = 0; i < d; i++) {
        const double r = pa[i] + pb[i];
        rho_out[i] = r;
        e1 += (m[i] * pb[i]) * r;
        b1 += (m[i] * pa[i]) * r;
    }
    return e1 > 0 && b1 > 0;
}

static int merge(const double *m, const double *rho_a, const double *rho_b, const double *p_beg,
                 const double *p_end, const double *p_a_end, const double *p_b_beg, double *rho_out,
                 size_t d) {
    if (rho_a == p_beg && p_a_end == p_beg && rho_b == p_end && p_b_beg == p_end)
        return merge_uturn_pair(m, p_beg, p_end, rho_out, d);
    return merge_uturn(m, rho_a, rho_b, p_beg, p_end, p_a_end, p_b_beg, rho_out, d);
}

/* One leapfrog step from node `from` as a subtree of depth 0. */
static int build_leaf(tree *t, int from, double sign, subtree *out) {
    const int n = node_new(t);
    double h = leapfrog_to(t, from, n, sign * t->eps);
    t->n_leapfrog++;
    if (h - t->H0 > t->max_dh) t->divergent = 1;
    out->lsw = t->H0 - h;
    t->sum_metro += t->H0 - h > 0 ? 1.0 : exp(t->H0 - h);
    t->ref[n] = 3;
    out->prop = out->beg = out->end = n;
    out->rho = node_p(t, n);
    return !t->divergent;
}

/* Stan's build_tree: a subtree of 2^depth leapfrog steps in direction sign from node
   `from`; rho into rho_buf (depth > 0). On failure (divergence or U-turn) the transition
   stops, so references held at that point are simply dropped with the pool. */
static int build_tree(tree *t, int depth, int from, double sign, double *rho_buf, subtree *out) {
    if (depth == 0) return build_leaf(t, from, sign, out);
    double *ra = t->rho_l + (size_t)(2 * depth) * t->stride, *rb = ra + t->stride;
    subtree a, b;
    /* the initial half, then the final half continuing from where the initial one ended */
    if (!build_tree(t, depth - 1, from, sign, ra, &a)) return 0;
    if (!build_tree(t, depth - 1, a.end, sign, rb, &b)) return 0;
    /* Stan samples from the merged subtree, then checks its U-turn; when the check fails the
       transition ends and that sample (its log-sum-exp, exp and uniform, the chain's stream
       being used no further) is never looked at, so it is skipped. */
    const int persist = merge(t->m, a.rho, b.rho, node_p(t, a.beg), node_p(t, b.end),
                              node_p(t, a.end), node_p(t, b.beg), rho_buf, t->d);
    if (!persist) return 0;
    /* multinomial sample from the subtree */
    double lsw_sub = log_sum_exp(a.lsw, b.lsw);
    out->lsw = lsw_sub;
    int take_b = 1;
    if (!(b.lsw > lsw_sub)) {
        double accept = exp(b.lsw - lsw_sub);
        take_b = hb_rng_stream_uniform(t->rng) < accept;
    }
    if (take_b) {
        node_put(t, a.prop);
        out->prop = b.prop;
    } else {
        node_put(t, b.prop);
        out->prop = a.prop;
    }
    out->rho = rho_buf;
    out->beg = a.beg;
    out->end = b.end;
    node_put(t, a.end);
    node_put(t, b.beg);
    return 1;
}

/* Workspace of one chain's transition (vectors of stride >= d doubles, 64-byte aligned when
   the workspace is). */
typedef struct chain_ws {
    size_t stride;
    point z; /* the chain's point: in the pool (node z_node) */
    int z_node;
    point zs; /* scratch point of the step-size heuristic */
    double *tmp, *m, *noise;
    double *rho3; /* 3 trajectory-level rho vectors */
    double *rho_l, *pool;
} chain_ws;

static size_t ws_stride(size_t d) {
    return (d + 7) / 8 * 8;
}

static size_t chain_ws_doubles(size_t d, int max_depth) {
    return ws_stride(d) *
           (3 + 3 + 3 + 2 * ((size_t)max_depth + 1) + NODE_VECS * POOL_NODES(max_depth));
}

static void set_point(point *z, double *base, size_t stride) {
    z->q = base;
    z->p = base + stride;
    z->g = base + 2 * stride;
}

static void chain_ws_init(chain_ws *w, double *p, size_t d, int max_depth) {
    const size_t st = ws_stride(d);
    w->stride = st;
    set_point(&w->zs, p, st);
    p += 3 * st;
    w->tmp = p;
    w->m = p + st;
    w->noise = p + 2 * st;
    p += 3 * st;
    w->rho3 = p;
    p += 3 * st;
    w->rho_l = p;
    p += 2 * ((size_t)max_depth + 1) * st;
    w->pool = p;
    w->z_node = 0;
    set_point(&w->z, w->pool, st);
}

/* p = z / sqrt(m), element by element. sqrt and division are correctly rounded, so the vector
   forms give the scalar loop's values; the scalar loop itself does not vectorise (sqrt may set
   errno). */
static void momentum_from_noise(double *restrict p, const double *restrict z,
                                const double *restrict m, size_t d) {
    size_t i = 0;
#if defined(__AVX512F__)
    for (; i + 8 <= d; i += 8)
        _mm512_storeu_pd(
            p + i, _mm512_div_pd(_mm512_loadu_pd(z + i), _mm512_sqrt_pd(_mm512_loadu_pd(m + i))));
#elif defined(__AVX__)
    for (; i + 4 <= d; i += 4)
        _mm256_storeu_pd(
            p + i, _mm256_div_pd(_mm256_loadu_pd(z + i), _mm256_sqrt_pd(_mm256_loadu_pd(m + i))));
#endif
    for (; i < d; i++) p[i] = z[i] / sqrt(m[i]);
}

typedef struct transition_out {
    double accept, energy;
    int depth, n_leapfrog, divergent;
} transition_out;

/* One NUTS transition from w->z (q, g, lp set; p drawn here from noise). On return w->z
   holds the selected point (a node of the pool). */
static void transition(const nuts *s, const hb_model *model, chain_ws *w, double eps,
                       hb_rng_stream *rng, transition_out *res) {
    const size_t d = s->dim;
    const double *m = w->m;
    momentum_from_noise(w->z.p, w->noise, m, d);
    /* Not zero-initialised (its arrays are large next to a small model's step): a node's
       reference count and lp are set when it is taken from the free list. */
    tree t;
    t.model = model;
    t.d = d;
    t.stride = w->stride;
    t.m = m;
    t.eps = eps;
    t.max_dh = s->max_dh;
    t.n_leapfrog = 0;
    t.divergent = 0;
    t.sum_metro = 0;
    t.rng = rng;
    t.pool = w->pool;
    t.rho_l = w->rho_l;
    const int n_nodes = (int)POOL_NODES(s->max_depth);
    const int z0 = w->z_node;
    t.n_free = 0;
    for (int k = n_nodes - 1; k >= 0; k--)
        if (k != z0) t.free_[t.n_free++] = k;
    t.lp[z0] = w->z.lp;
    t.H0 = energy(&w->z, m, d);
    /* the trajectory's ends (backward-most bb, forward-most ff; bf and fb are the inner ends
       of the backward and forward parts) and the sample all start at z0 */
    int bb = z0, bf = z0, fb = z0, ff = z0, sample = z0;
    t.ref[z0] = 5;
    const double *rho = node_p(&t, z0);
    int rho_k = 0; /* rho3[rho_k] is not rho */
    double lsw = 0;
    int depth = 0;
    while (depth < s->max_depth) {
        double *sub_buf = w->rho3 + (size_t)rho_k * w->stride;
        double *rho_new = w->rho3 + (size_t)((rho_k + 1) % 3) * w->stride;
        const double *rho_fwd, *rho_bck;
        subtree sub;
        int valid;
        if (hb_rng_stream_uniform(rng) > 0.5) {
            /* forward: the old trajectory becomes the backward part */
            rho_bck = rho;
            t.ref[ff]++;
            node_put(&t, bf);
            bf = ff;
            valid = build_tree(&t, depth, ff, 1.0, sub_buf, &sub);
            if (!valid) break;
            node_put(&t, fb);
            node_put(&t, ff);
            fb = sub.beg;
            ff = sub.end;
            rho_fwd = sub.rho;
        } else {
            rho_fwd = rho;
            t.ref[bb]++;
            node_put(&t, fb);
            fb = bb;
            valid = build_tree(&t, depth, bb, -1.0, sub_buf, &sub);
            if (!valid) break;
            node_put(&t, bf);
            node_put(&t, bb);
            bf = sub.beg;
            bb = sub.end;
            rho_bck = sub.rho;
        }
        depth++;
        /* biased progressive sampling: favour the new subtree */
        int take = 1;
        if (!(sub.lsw > lsw)) {
            double accept = exp(sub.lsw - lsw);
            take = hb_rng_stream_uniform(rng) < accept;
        }
        if (take) {
            node_put(&t, sample);
            sample = sub.prop;
        } else {
            node_put(&t, sub.prop);
        }
        int persist = merge(m, rho_bck, rho_fwd, node_p(&t, bb), node_p(&t, ff), node_p(&t, bf),
                            node_p(&t, fb), rho_new, d);
        if (!persist || depth == s->max_depth) break; /* the total weight is not needed */
        lsw = log_sum_exp(lsw, sub.lsw);
        rho = rho_new;
        rho_k = (rho_k + 2) % 3;
    }
    w->z_node = sample;
    set_point(&w->z, node_q(&t, sample), w->stride);
    w->z.lp = t.lp[sample];
    res->accept = t.n_leapfrog > 0 ? t.sum_metro / t.n_leapfrog : 0;
    res->energy = energy(&w->z, m, d);
    res->depth = depth;
    res->n_leapfrog = t.n_leapfrog;
    res->divergent = t.divergent;
}

/* Stan's init_stepsize (ALGORITHMS.md §6.5) from nominal eps at w->z (restored on return).
   Trial k draws its momentum from purpose + k (HB_RNG_STEPSIZE_INIT before the iteration's
   transition, HEUR_AFTER after it). Returns the step size;
   *grads counts gradient evaluations. The step size is kept within [1e-300, 1e7] (Stan
   throws outside; here the chain carries on and dual averaging takes over). */
static double init_stepsize(const nuts *s, const hb_model *model, chain_ws *w, double eps,
                            uint32_t seed, uint64_t chain, uint64_t iter, uint32_t purpose,
                            int64_t *grads) {
    const size_t d = s->dim;
    if (d == 0 || eps == 0 || eps > 1e7 || isnan(eps)) return eps;
    point z0 = w->zs; /* scratch copy of the starting point */
    copy_point(&z0, &w->z, d);
    int direction = 0;
    for (uint32_t trial = 0; trial < 4096; trial++) {
        copy_point(&w->z, &z0, d);
        hb_rng_normals(seed, chain, iter, purpose + trial, d, w->tmp);
        for (size_t i = 0; i < d; i++) w->z.p[i] = w->tmp[i] / sqrt(w->m[i]);
        double H0 = energy(&w->z, w->m, d);
        double h = leapfrog(model, w->m, &w->z, eps, d);
        (*grads)++;
        double delta = H0 - h;
        if (trial == 0) {
            direction = delta > log(0.8) ? 1 : -1;
            continue;
        }
        if (direction == 1 && !(delta > log(0.8))) break;
        if (direction == -1 && !(delta < log(0.8))) break;
        double next = direction == 1 ? 2 * eps : 0.5 * eps;
        if (next > 1e7 || next < 1e-300) break;
        eps = next;
    }
    copy_point(&w->z, &z0, d);
    return eps;
}

/* ---- per-chain adaptation state (adapt = per_chain) -------------------------------------- */

static double *state_row(hb_batch *b, size_t row) {
    return b->state + row * L;
}

static void da_load(const nuts *s, hb_batch *b, int c, hb_dual_avg *da) {
    hb_dual_avg_init(da, 1.0, s->delta);
    da->mu = state_row(b, S_MU)[c];
    da->t = state_row(b, S_T)[c];
    da->s_bar = state_row(b, S_SBAR)[c];
    da->x_bar = state_row(b, S_XBAR)[c];
}

static void da_store(hb_batch *b, int c, const hb_dual_avg *da) {
    state_row(b, S_MU)[c] = da->mu;
    state_row(b, S_T)[c] = da->t;
    state_row(b, S_SBAR)[c] = da->s_bar;
    state_row(b, S_XBAR)[c] = da->x_bar;
}

/* ---- the sampler type ------------------------------------------------------------------- */

static void nuts_destroy(void *self);
static int nuts_read(nuts *s, hb_config *cfg, const hb_model *model, long warmup, hb_error *err);

static int nuts_create(hb_config *cfg, const hb_model *model, long warmup, void **self,
                       hb_error *err) {
    nuts *s = calloc(1, sizeof *s);
    if (!s) abort();
    int rc = nuts_read(s, cfg, model, warmup, err);
    if (rc) {
        nuts_destroy(s);
        return rc;
    }
    *self = s;
    return HB_OK;
}

static int nuts_read(nuts *s, hb_config *cfg, const hb_model *model, long warmup, hb_error *err) {
    s->dim = model->dim;
    s->warmup = warmup;
    int is_auto = 1;
    double eps = 1.0; /* Stan's initial nominal step size */
    if (hb_cfg_double_or_auto(cfg, "sampler", "step_size", 1, NULL, 1e-300, 1e300, &eps, &is_auto,
                              err))
        return err->code;
    s->eps_init = s->eps = eps;
    s->eps_fixed = !is_auto;
    static const char *const metrics[] = {"diag", "identity", "auto", "dense", NULL};
    int metric = 0;
    if (hb_cfg_choice(cfg, "sampler", "metric", "diag", metrics, &metric, err)) return err->code;
    if (metric == 3)
        return hb_fail(err, HB_ERR_USAGE,
                       "%s: [sampler] metric: 'dense' is not supported by the nuts sampler "
                       "(use diag or identity)",
                       hb_config_path(cfg));
    s->metric_diag = metric != 1;
    int64_t ib = 75, tb = 50, win = 25, depth = 10;
    if (hb_cfg_int(cfg, "sampler", "adapt_init_buffer", &ib, 0, 1000000000, &ib, err) ||
        hb_cfg_int(cfg, "sampler", "adapt_term_buffer", &tb, 0, 1000000000, &tb, err) ||
        hb_cfg_int(cfg, "sampler", "adapt_window", &win, 1, 1000000000, &win, err) ||
        hb_cfg_int(cfg, "nuts", "max_depth", &depth, 1, 30, &depth, err))
        return err->code;
    s->max_depth = (int)depth;
    double target = 0.8, maxdh = 1000, jitter = 0;
    if (hb_cfg_double(cfg, "nuts", "target_accept", &target, 0.01, 0.999, &s->delta, err) ||
        hb_cfg_double(cfg, "nuts", "max_delta_h", &maxdh, 1e-300, 1e300, &s->max_dh, err) ||
        hb_cfg_double(cfg, "nuts", "step_size_jitter", &jitter, 0, 1, &s->jitter, err))
        return err->code;
    /* per_chain (Stan's scheme) is the default: every chain finds its own step size and
       metric, which survives chains that start far apart or in a different region; pooled
       adapts in lock-step from all chains' statistics. */
    static const char *const modes[] = {"per_chain", "pooled", NULL};
    int mode = 0;
    if (hb_cfg_choice(cfg, "nuts", "adapt", "per_chain", modes, &mode, err)) return err->code;
    s->per_chain = mode == 0;
    hb_windows_init(&s->win, warmup, ib, tb, win);
    s->m = malloc((s->dim ? s->dim : 1) * sizeof *s->m);
    s->rep_m = malloc((s->dim ? s->dim : 1) * sizeof *s->rep_m);
    if (!s->m || !s->rep_m) abort();
    for (size_t i = 0; i < s->dim; i++) s->m[i] = s->rep_m[i] = 1.0;
    s->rep_eps = s->eps;
    /* Stan sets mu = log(10 eps_user) before running the heuristic (ALGORITHMS.md §6.6). */
    hb_dual_avg_init(&s->da, s->eps, s->delta);
    s->need_heur = !s->eps_fixed && warmup > 0;
    return HB_OK;
}

static void nuts_destroy(void *self) {
    nuts *s = self;
    if (!s) return;
    free(s->m);
    free(s->rep_m);
    free(s);
}

static size_t nuts_state_doubles(const void *self, size_t dim) {
    const nuts *s = self;
    return s->per_chain ? S_HEAD + 3 * dim : 0;
}

static size_t nuts_ws_doubles(const void *self, size_t dim) {
    const nuts *s = self;
    return dim * L + chain_ws_doubles(dim, s->max_depth);
}

static size_t nuts_red_doubles(const void *self, size_t dim) {
    const nuts *s = self;
    return s->per_chain ? R_M + dim : R_EPS;
}

static void nuts_init_batch(const hb_step_ctx *ctx, hb_batch *b) {
    const nuts *s = ctx->self;
    if (!s->per_chain) return;
    const size_t d = s->dim;
    hb_dual_avg da;
    hb_dual_avg_init(&da, s->eps_init, s->delta);
    for (int c = 0; c < L; c++) {
        state_row(b, S_EPS)[c] = s->eps_init;
        da_store(b, c, &da);
        state_row(b, S_WN)[c] = 0;
        for (size_t i = 0; i < d; i++) {
            state_row(b, S_HEAD + i)[c] = 1.0;
            state_row(b, S_HEAD + d + i)[c] = 0.0;
            state_row(b, S_HEAD + 2 * d + i)[c] = 0.0;
        }
    }
}

/* Per-chain warmup after the transition of iteration k (Stan's adapt_diag_e_nuts):
   dual averaging every iteration; Welford in slow windows; at a window's end the
   regularised variance becomes the metric, init_stepsize reruns and dual averaging
   restarts; at the last warmup iteration the averaged step size is frozen. */
static void adapt_chain(const nuts *s, const hb_step_ctx *ctx, hb_batch *b, int c, chain_ws *w,
                        double accept, int64_t *grads) {
    const size_t d = s->dim;
    const long k = (long)ctx->iter;
    double eps = state_row(b, S_EPS)[c];
    hb_dual_avg da;
    da_load(s, b, c, &da);
    if (!s->eps_fixed) eps = hb_dual_avg_update(&da, accept);
    if (s->metric_diag && hb_windows_in_slow(&s->win, k)) {
        double n = state_row(b, S_WN)[c] + 1;
        state_row(b, S_WN)[c] = n;
        for (size_t i = 0; i < d; i++) {
            double *mean = state_row(b, S_HEAD + d + i), *m2 = state_row(b, S_HEAD + 2 * d + i);
            double delta = w->z.q[i] - mean[c];
            mean[c] += delta / n;
            m2[c] += (w->z.q[i] - mean[c]) * delta;
        }
        if (hb_windows_end_of_slow(&s->win, k)) {
            int ok = n >= 2;
            for (size_t i = 0; ok && i < d; i++) {
                double var = state_row(b, S_HEAD + 2 * d + i)[c] / (n - 1);
                double mi = (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0));
                ok = isfinite(mi) && mi > 0;
                w->tmp[i] = mi;
            }
            /* A chain whose variance is not finite keeps its metric (Stan would stop). */
            for (size_t i = 0; ok && i < d; i++) {
                state_row(b, S_HEAD + i)[c] = w->tmp[i];
                w->m[i] = w->tmp[i];
            }
            state_row(b, S_WN)[c] = 0;
            for (size_t i = 0; i < d; i++)
                state_row(b, S_HEAD + d + i)[c] = state_row(b, S_HEAD + 2 * d + i)[c] = 0;
            if (!s->eps_fixed) {
                eps = init_stepsize(s, ctx->model, w, eps, ctx->seed, b->chain0 + (uint64_t)c,
                                    ctx->iter, HEUR_AFTER, grads);
                hb_dual_avg_init(&da, eps, s->delta);
            }
        }
    }
    if (k == s->warmup - 1 && !s->eps_fixed && da.t > 0) eps = hb_dual_avg_final(&da);
    state_row(b, S_EPS)[c] = eps;
    da_store(b, c, &da);
}

static void nuts_step(const hb_step_ctx *ctx, hb_batch *b, double *ws, hb_step_out *out) {
    const nuts *s = ctx->self;
    const size_t d = ctx->dim;
    double *noise = ws;
    chain_ws w;
    chain_ws_init(&w, ws + d * L, d, s->max_depth);
    hb_rng_normals_lanes(ctx->seed, b->chain0, ctx->iter, HB_RNG_PROPOSAL, d, noise);
    const int pooled_heur = !s->per_chain && ctx->warmup && s->need_heur;
    double red[R_M] = {0};
    if (out->red) memset(out->red, 0, nuts_red_doubles(s, d) * sizeof *out->red);
    for (int c = 0; c < L; c++) {
        out->n_grad[c] = 0;
        for (int k = 0; k < N_STATS; k++) out->stats[k * L + c] = 0;
    }
    for (int c = 0; c < b->n_real; c++) {
        const uint64_t chain = b->chain0 + (uint64_t)c;
        int64_t grads = 0;
        for (size_t i = 0; i < d; i++) {
            w.z.q[i] = b->x[i * L + c];
            w.z.g[i] = b->g[i * L + c];
            w.noise[i] = noise[i * L + c];
            w.m[i] = s->per_chain ? state_row(b, S_HEAD + i)[c] : s->m[i];
        }
        w.z.lp = b->lp[c];
        double eps = s->per_chain ? state_row(b, S_EPS)[c] : s->eps;
        /* Stan runs init_stepsize before the first warmup iteration. */
        if (s->per_chain && ctx->warmup && ctx->iter == 0 && !s->eps_fixed) {
            eps = init_stepsize(s, ctx->model, &w, eps, ctx->seed, chain, ctx->iter,
                                HB_RNG_STEPSIZE_INIT, &grads);
            state_row(b, S_EPS)[c] = eps;
        }
        if (pooled_heur) {
            eps = init_stepsize(s, ctx->model, &w, eps, ctx->seed, chain, ctx->iter,
                                HB_RNG_STEPSIZE_INIT, &grads);
            red[R_LOGEPS] += log(eps);
            red[R_NHEUR] += 1;
        }
        double eps_this = eps;
        hb_rng_stream rng;
        hb_rng_stream_init(&rng, ctx->seed, chain, ctx->iter, HB_RNG_ACCEPT);
        if (s->jitter > 0)
            eps_this = eps * (1.0 + s->jitter * (2.0 * hb_rng_stream_uniform(&rng) - 1.0));
        transition_out res;
        transition(s, ctx->model, &w, eps_this, &rng, &res);
        grads += res.n_leapfrog;
        if (s->per_chain && ctx->warmup) adapt_chain(s, ctx, b, c, &w, res.accept, &grads);
        for (size_t i = 0; i < d; i++) {
            b->x[i * L + c] = w.z.q[i];
            b->g[i * L + c] = w.z.g[i];
        }
        b->lp[c] = w.z.lp;
        out->stats[ST_LP * L + c] = w.z.lp;
        out->stats[ST_ACCEPT * L + c] = res.accept;
        out->stats[ST_STEP * L + c] = eps_this;
        out->stats[ST_DEPTH * L + c] = res.depth;
        out->stats[ST_DIVERGING * L + c] = res.divergent;
        out->stats[ST_ENERGY * L + c] = res.energy;
        out->n_grad[c] = grads;
        red[R_ACC] += res.accept;
        red[R_N] += 1;
        if (s->per_chain && out->red) {
            out->red[R_EPS] += state_row(b, S_EPS)[c];
            for (size_t i = 0; i < d; i++) out->red[R_M + i] += state_row(b, S_HEAD + i)[c];
        }
    }
    /* Padding lanes do not move; their stats are never written. */
    for (int c = b->n_real; c < L; c++) out->stats[ST_LP * L + c] = b->lp[c];
    if (out->red) memcpy(out->red, red, R_EPS * sizeof *red);
}

static void nuts_plan(void *self, long k, hb_iter_plan *plan) {
    nuts *s = self;
    plan->reduce_stats = 1;
    plan->moments = HB_MOMENTS_DIAG;
    plan->accumulate_moments = !s->per_chain && s->metric_diag && hb_windows_in_slow(&s->win, k);
    plan->update_metric = plan->accumulate_moments && hb_windows_end_of_slow(&s->win, k);
}

static void nuts_adapt(void *self, long k, const double *red) {
    nuts *s = self;
    (void)k;
    if (red[R_N] > 0) s->acc_mean = red[R_ACC] / red[R_N];
    if (s->per_chain) {
        if (red[R_N] > 0) {
            s->rep_eps = red[R_EPS] / red[R_N];
            for (size_t i = 0; i < s->dim; i++) s->rep_m[i] = red[R_M + i] / red[R_N];
        }
        return;
    }
    if (s->need_heur && red[R_NHEUR] > 0) {
        /* the chains' heuristic step sizes, pooled as a geometric mean; dual averaging
           restarts from it (mu = log(10 eps)) except at the very start, where Stan keeps
           mu = log(10 eps_user) */
        s->eps = exp(red[R_LOGEPS] / red[R_NHEUR]);
        double mu = s->da.mu;
        hb_dual_avg_init(&s->da, s->eps, s->delta);
        if (k == 0) s->da.mu = mu;
        s->need_heur = 0;
    }
    if (s->eps_fixed || red[R_N] <= 0) return;
    s->eps = hb_dual_avg_update(&s->da, s->acc_mean);
}

static int nuts_set_moments(void *self, const double *moments, hb_error *err) {
    nuts *s = self;
    if (hb_metric_from_moments(moments, s->dim, s->m) != 0)
        return hb_fail(err, HB_ERR_MODEL,
                       "warmup: the pooled variance of a coordinate is not finite or not positive "
                       "(the chains diverged or are stuck)");
    /* Stan reruns init_stepsize after every metric update (here: on every chain in the next
       iteration, pooled) and restarts dual averaging. */
    s->need_heur = !s->eps_fixed;
    return HB_OK;
}

static void nuts_end_warmup(void *self) {
    nuts *s = self;
    if (!s->per_chain && !s->eps_fixed && s->da.t > 0) s->eps = hb_dual_avg_final(&s->da);
    s->need_heur = 0;
}

static double nuts_step_size(const void *self) {
    const nuts *s = self;
    return s->per_chain ? s->rep_eps : s->eps;
}

static size_t nuts_report(const void *self, hb_adapt_item *items, size_t max) {
    const nuts *s = self;
    if (max < 3) return 0;
    items[0] = (hb_adapt_item){
        .name = "step_size", .data = s->per_chain ? &s->rep_eps : &s->eps, .rows = 1, .cols = 1};
    items[1] = (hb_adapt_item){
        .name = "inv_metric", .data = s->per_chain ? s->rep_m : s->m, .rows = s->dim, .cols = 1};
    items[2] = (hb_adapt_item){
        .name = "adapt",
        .text = s->per_chain ? "per_chain (step_size and inv_metric are means over chains; "
                               "each chain's step size is in sample_stats/step_size)"
                             : "pooled"};
    return 3;
}

/* Blob: eps, da, acc_mean, rep_eps, need_heur (as a double), m, rep_m. */
static size_t nuts_checkpoint_bytes(const void *self) {
    const nuts *s = self;
    return sizeof(double) * (4 + 2 * s->dim) + sizeof s->da;
}

static void nuts_save(const void *self, void *blob) {
    const nuts *s = self;
    double head[4] = {s->eps, s->acc_mean, s->rep_eps, s->need_heur};
    char *p = blob;
    memcpy(p, head, sizeof head);
    p += sizeof head;
    memcpy(p, &s->da, sizeof s->da);
    p += sizeof s->da;
    memcpy(p, s->m, s->dim * sizeof *s->m);
    p += s->dim * sizeof *s->m;
    memcpy(p, s->rep_m, s->dim * sizeof *s->rep_m);
}

static int nuts_restore(void *self, const void *blob, hb_error *err) {
    nuts *s = self;
    (void)err;
    double head[4];
    const char *p = blob;
    memcpy(head, p, sizeof head);
    p += sizeof head;
    s->eps = head[0];
    s->acc_mean = head[1];
    s->rep_eps = head[2];
    s->need_heur = head[3] != 0;
    memcpy(&s->da, p, sizeof s->da);
    p += sizeof s->da;
    memcpy(s->m, p, s->dim * sizeof *s->m);
    p += s->dim * sizeof *s->m;
    memcpy(s->rep_m, p, s->dim * sizeof *s->rep_m);
    return HB_OK;
}

const hb_sampler_type hb_sampler_nuts = {
    .name = "nuts",
    .summary = "No-U-Turn sampler exactly as Stan (multinomial, generalised U-turn, windowed "
               "warmup); [nuts] adapt = per_chain (default, as Stan) or pooled",
    .create = nuts_create,
    .destroy = nuts_destroy,
    .state_doubles = nuts_state_doubles,
    .workspace_doubles = nuts_ws_doubles,
    .stats = nuts_stats,
    .n_stats = N_STATS,
    .n_red = R_EPS,
    .red_doubles = nuts_red_doubles,
    .init_batch = nuts_init_batch,
    .plan = nuts_plan,
    .step = nuts_step,
    .adapt = nuts_adapt,
    .set_moments = nuts_set_moments,
    .end_warmup = nuts_end_warmup,
    .step_size = nuts_step_size,
    .report = nuts_report,
    .checkpoint_bytes = nuts_checkpoint_bytes,
    .save = nuts_save,
    .restore = nuts_restore,
};
