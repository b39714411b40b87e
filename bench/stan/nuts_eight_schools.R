# Stan's NUTS on eight schools (non-centered), 4 chains x 1000 warmup x 1000 draws at
# adapt_delta 0.8, seeds 1..N (default 20): divergences per seed and their total (the bound of
# tests/test_nuts.c). Usage: Rscript bench/stan/nuts_eight_schools.R SHARED_DIR [N]
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(here, "common.R")) # rstan set-up and the compiled-model cache
suppressMessages(library(jsonlite))
shared <- commandArgs(TRUE)[1]
nseeds <- if (length(commandArgs(TRUE)) > 1) as.integer(commandArgs(TRUE)[2]) else 20L
data <- fromJSON(file.path(shared, "targets/eight_schools-eight_schools_noncentered/data.json"))
m <- stan_model_cached(file.path(here, "models", "eight_schools-eight_schools_noncentered.stan"))
tot <- 0
for (s in seq_len(nseeds)) {
  fit <- sampling(m, data = data, chains = 4, iter = 2000, warmup = 1000, seed = s, cores = 1,
                  refresh = 0)
  d <- get_num_divergent(fit)
  tot <- tot + d
  cat(sprintf("seed %d: %d divergences\n", s, d))
}
cat(sprintf("total %d\n", tot))
