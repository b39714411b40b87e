// Bayesian logistic regression as heartbeat's built-in `logistic` with its defaults:
// alpha ~ normal(0, intercept_scale = 10), beta ~ normal(0, prior_scale = 2.5).
data {
  int<lower=1> N;
  int<lower=1> K;
  matrix[N, K] X;
  int<lower=0, upper=1> y[N];
}
parameters {
  real alpha;
  vector[K] beta;
}
model {
  alpha ~ normal(0, 10);
  beta ~ normal(0, 2.5);
  y ~ bernoulli_logit_glm(X, alpha, beta);
}
