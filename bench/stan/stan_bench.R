# One model through rstan: gradient throughput of grad_log_prob, then NUTS (4 chains x 1000
# warmup x 1000 draws, diag_e, adapt_delta 0.8, chains one after the other on one core) with
# wall times, leapfrog steps, ESS_bulk per parameter (posterior::ess_bulk, the definition
# heartbeat summary follows). Appends one JSON line to OUT; with --draws it also writes the
# draws (chain, draw, parameters...) as CSV for b^2 (bench/heartbeat/b2.py via compare.py).
#
# Usage: Rscript stan_bench.R --name NAME --model FILE.stan --data DATA.json --out OUT.jsonl
#          [--draws DRAWS.csv] [--seed 1] [--chains 4] [--warmup 1000] [--iter 1000]
#          [--grad-secs 2] [--no-nuts] [--no-grad]
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(here, "common.R"))

opt <- list(name = NULL, model = NULL, data = NULL, out = "", draws = "", seed = "1",
            chains = "4", warmup = "1000", iter = "1000", `grad-secs` = "2", nuts = TRUE,
            grad = TRUE)
a <- commandArgs(trailingOnly = TRUE)
i <- 1
while (i <= length(a)) {
  k <- sub("^--", "", a[i])
  if (k == "no-nuts") { opt$nuts <- FALSE; i <- i + 1; next }
  if (k == "no-grad") { opt$grad <- FALSE; i <- i + 1; next }
  if (!(k %in% names(opt)) || i == length(a)) stop("bad argument ", a[i])
  opt[[k]] <- a[i + 1]
  i <- i + 2
}
for (k in c("name", "model", "data")) if (is.null(opt[[k]])) stop("--", k, " is required")
seed <- as.integer(opt$seed); chains <- as.integer(opt$chains)
warmup <- as.integer(opt$warmup); iter <- as.integer(opt$iter)

data <- jsonlite::fromJSON(opt$data, simplifyVector = TRUE)
t0 <- proc.time()[["elapsed"]]
sm <- stan_model_cached(opt$model)
compile_s <- proc.time()[["elapsed"]] - t0

rec <- list(bench = "stan", name = opt$name, stan_version = as.character(packageVersion("rstan")),
            seed = seed, chains = chains, warmup = warmup, draws = iter)

if (opt$nuts) {
  t0 <- proc.time()[["elapsed"]]
  fit <- sampling(sm, data = data, chains = chains, iter = warmup + iter, warmup = warmup,
                  seed = seed, cores = 1, refresh = 0,
                  control = list(metric = "diag_e", adapt_delta = 0.8))
  rec$wall_total <- proc.time()[["elapsed"]] - t0
  el <- get_elapsed_time(fit)               # seconds per chain: warmup, sample
  rec$chain_warmup_s <- unname(el[, "warmup"])
  rec$chain_sampling_s <- unname(el[, "sample"])
  rec$wall_warmup <- sum(el[, "warmup"])     # one core, chains in sequence
  rec$wall_sampling <- sum(el[, "sample"])
  spw <- get_sampler_params(fit, inc_warmup = TRUE)
  rec$grads_warmup <- sum(sapply(spw, function(m) sum(m[seq_len(warmup), "n_leapfrog__"])))
  rec$grads_sampling <- sum(sapply(spw, function(m) sum(m[warmup + seq_len(iter), "n_leapfrog__"])))
  sp <- get_sampler_params(fit, inc_warmup = FALSE)
  all <- do.call(rbind, sp)
  rec$divergences <- sum(all[, "divergent__"])
  rec$max_treedepth_hits <- sum(all[, "treedepth__"] >= 10)
  rec$mean_tree_depth <- mean(all[, "treedepth__"])
  rec$mean_accept_stat <- mean(all[, "accept_stat__"])
  rec$step_size <- unname(sapply(sp, function(m) m[nrow(m), "stepsize__"]))
  arr <- as.array(fit)                      # iterations x chains x parameters (+ lp__)
  pars <- setdiff(dimnames(arr)[[3]], "lp__")
  ess <- sapply(pars, function(p) posterior::ess_bulk(arr[, , p]))
  rhat <- sapply(pars, function(p) posterior::rhat(arr[, , p]))
  rec$ess_bulk <- as.list(ess)
  rec$ess_bulk_min <- min(ess)
  rec$ess_bulk_median <- median(ess)
  rec$rhat_max <- max(rhat)
  rec$ess_per_s <- min(ess) / rec$wall_sampling
  rec$ess_per_s_total <- min(ess) / (rec$wall_warmup + rec$wall_sampling)
  rec$ess_per_1000_grads <- 1000 * min(ess) / rec$grads_sampling
  rec$leapfrog_per_s_sampling <- rec$grads_sampling / rec$wall_sampling
  if (nzchar(opt$draws)) {
    d <- do.call(rbind, lapply(seq_len(chains), function(c)
      cbind(chain = c - 1, draw = seq_len(iter) - 1, arr[, c, pars, drop = TRUE])))
    write.csv(d, opt$draws, row.names = FALSE)
  }
} else {
  # a fit object for grad_log_prob only
  fit <- sampling(sm, data = data, chains = 1, iter = 200, warmup = 100, seed = seed,
                  refresh = 0)
}

if (opt$grad) {
  # random unconstrained points: posterior draws in random order, mapped to unconstrained space
  ex <- extract(fit, permuted = TRUE)       # parameters (unconstrain_pars ignores the rest)
  ex$lp__ <- NULL
  n <- NROW(ex[[1]])
  set.seed(seed)
  idx <- sample.int(n, min(n, 256))
  upars <- lapply(idx, function(s) unconstrain_pars(fit, lapply(ex, function(v)
    if (is.null(dim(v)) || length(dim(v)) == 1) v[s] else v[s, ])))
  D <- length(upars[[1]])
  secs <- as.numeric(opt$`grad-secs`)
  P <- length(upars)
  # calls per second over windows of secs / 3, best of three (the machine is shared: the best
  # window is the least disturbed one). Through the method users call, and through the
  # model instance directly (no S4 dispatch: R's share of the call cost is smaller).
  rate <- function(f) {
    best <- 0
    for (w in 1:3) {
      calls <- 0L
      t0 <- proc.time()[["elapsed"]]
      repeat {
        for (j in seq_len(P)) g <- f(upars[[j]])
        calls <- calls + P
        t <- proc.time()[["elapsed"]] - t0
        if (t >= secs / 3) break
      }
      best <- max(best, calls / t)
    }
    best
  }
  inst <- fit@.MISC$stan_fit_instance
  rec$dim <- D
  rec$grad_log_prob_per_s <- rate(function(u) grad_log_prob(fit, u, adjust_transform = TRUE))
  rec$grad_log_prob_direct_per_s <- rate(function(u) inst$grad_log_prob(u, TRUE))
  rec$grad_points <- P
}
rec$compile_or_load_s <- compile_s
line <- to_json(rec)
cat(line, "\n", sep = "")
if (nzchar(opt$out)) cat(line, "\n", sep = "", file = opt$out, append = TRUE)
