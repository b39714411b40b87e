# Shared helpers for the Stan benchmarks (bench only; needs R with rstan).
if (!requireNamespace("rstan", quietly = TRUE) || !requireNamespace("posterior", quietly = TRUE) ||
    !requireNamespace("jsonlite", quietly = TRUE)) {
  message("bench/stan: skipped: R packages rstan, posterior or jsonlite missing ",
          "(install with scripts/setup-deps.sh --bench)")
  quit(status = 0)
}
suppressPackageStartupMessages(library(rstan))
rstan_options(boost_lib = "/usr/include")   # Debian's BH package is empty; Boost is in /usr/include
rstan_options(auto_write = FALSE)

# Compile a .stan file once; keep the compiled model as FILE.rds next to a hash of its code.
stan_model_cached <- function(file) {
  code <- paste(readLines(file), collapse = "\n")
  cache_dir <- Sys.getenv("HB_STAN_CACHE", file.path(tempdir(), "hb-stan-cache"))
  dir.create(cache_dir, showWarnings = FALSE, recursive = TRUE)
  key <- paste0(tools::file_path_sans_ext(basename(file)), "-",
                substr(digest_code(code), 1, 16), ".rds")
  path <- file.path(cache_dir, key)
  if (file.exists(path)) return(readRDS(path))
  sm <- stan_model(model_code = code, model_name = tools::file_path_sans_ext(basename(file)))
  saveRDS(sm, path)
  sm
}
digest_code <- function(s) {
  f <- tempfile(); writeLines(s, f); h <- unname(tools::md5sum(f)); unlink(f); h
}

# Minimal JSON writer for a named list of scalars, vectors and named lists (one line).
to_json <- function(x) {
  enc <- function(v) {
    if (is.null(v)) return("null")
    if (is.list(v)) {
      if (!is.null(names(v)))
        return(paste0("{", paste0('"', names(v), '":', vapply(v, enc, ""), collapse = ","), "}"))
      return(paste0("[", paste(vapply(v, enc, ""), collapse = ","), "]"))
    }
    one <- function(e) {
      if (is.character(e)) return(paste0('"', gsub('"', '\\\\"', e), '"'))
      if (is.logical(e)) return(if (is.na(e)) "null" else tolower(as.character(e)))
      if (!is.finite(e)) return("null")
      format(e, digits = 10, scientific = FALSE, trim = TRUE)
    }
    if (!is.null(names(v)) && length(v) > 1)
      return(enc(as.list(v)))
    if (length(v) == 1) return(one(v))
    paste0("[", paste(vapply(v, one, ""), collapse = ","), "]")
  }
  enc(x)
}
