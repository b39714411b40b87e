# Stan NUTS on the 100-d iid standard Gaussian: leapfrog steps, tree depths, acceptance and
# step sizes, with adaptation (4 chains x 1000 warmup x 1000 draws, diag_e, adapt_delta 0.8,
# several seeds) and without (fixed step sizes, unit metric, 16 chains x 1000 draws).
# Usage: Rscript bench/stan/nuts_gauss100.R [OUT.jsonl] [n_seeds]
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) >= 1) args[1] else ""
nseeds <- if (length(args) >= 2) as.integer(args[2]) else 5L
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(here, "common.R"))

sm <- stan_model_cached(file.path(here, "models", "gauss100.stan"))
D <- 100L
emit <- function(rec) {
  line <- to_json(rec)
  cat(line, "\n", sep = "")
  if (nzchar(out)) cat(line, "\n", sep = "", file = out, append = TRUE)
}
depth_hist <- function(td) {
  h <- table(factor(td, levels = 0:10))
  as.list(setNames(as.integer(h), names(h)))
}

for (seed in seq_len(nseeds)) {
  t0 <- proc.time()[["elapsed"]]
  fit <- sampling(sm, data = list(D = D), chains = 4, iter = 2000, warmup = 1000, seed = seed,
                  cores = 1, refresh = 0, control = list(metric = "diag_e", adapt_delta = 0.8))
  wall <- proc.time()[["elapsed"]] - t0
  sp <- get_sampler_params(fit, inc_warmup = FALSE)
  all <- do.call(rbind, sp)
  emit(list(bench = "nuts_gauss100", mode = "adapted", seed = seed, chains = 4L,
            warmup = 1000L, draws = 1000L,
            n_leapfrog_total = sum(all[, "n_leapfrog__"]),
            n_leapfrog_per_chain = unname(sapply(sp, function(m) sum(m[, "n_leapfrog__"]))),
            mean_tree_depth = mean(all[, "treedepth__"]),
            tree_depth_hist = depth_hist(all[, "treedepth__"]),
            mean_accept_stat = mean(all[, "accept_stat__"]),
            step_size = unname(sapply(sp, function(m) m[nrow(m), "stepsize__"])),
            mean_tree_depth_per_chain = unname(sapply(sp, function(m) mean(m[, "treedepth__"]))),
            mean_accept_stat_per_chain = unname(sapply(sp, function(m) mean(m[, "accept_stat__"]))),
            divergent = sum(all[, "divergent__"]), wall_s = wall))
}

for (eps in c(0.38, 0.40, 0.42, 0.44, 0.46, 0.48, 0.5, 0.6)) {
  set.seed(1000)
  inits <- lapply(1:16, function(i) list(x = rnorm(D)))   # exact draws: no warmup needed
  fit <- sampling(sm, data = list(D = D), chains = 16, iter = 1000, warmup = 0, seed = 1000,
                  init = inits, cores = 1, refresh = 0,
                  control = list(adapt_engaged = FALSE, stepsize = eps, metric = "unit_e"))
  sp <- get_sampler_params(fit, inc_warmup = FALSE)
  all <- do.call(rbind, sp)
  emit(list(bench = "nuts_gauss100", mode = "fixed", step_size = eps, chains = 16L,
            draws = 1000L, metric = "unit_e",
            n_leapfrog_total = sum(all[, "n_leapfrog__"]),
            mean_n_leapfrog = mean(all[, "n_leapfrog__"]),
            mean_tree_depth = mean(all[, "treedepth__"]),
            tree_depth_hist = depth_hist(all[, "treedepth__"]),
            mean_accept_stat = mean(all[, "accept_stat__"]),
            divergent = sum(all[, "divergent__"])))
}
