// eight_schools-eight_schools_noncentered (shared/targets/.../model.md), written from model.md
data {
  int<lower=0> J;
  real y[J];
  real<lower=0> sigma[J];
}
parameters {
  vector[J] theta_trans;
  real mu;
  real<lower=0> tau;
}
model {
  theta_trans ~ normal(0, 1);
  mu ~ normal(0, 5);
  tau ~ cauchy(0, 5);
  y ~ normal(mu + tau * theta_trans, sigma);
}
generated quantities {
  vector[J] theta = mu + tau * theta_trans;   // as heartbeat writes it (derived)
}
