// 100-d Gaussian with condition number kappa = 100 (heartbeat model `gaussian`, dim = 100,
// condition_number = 100): coordinate i = 0..D-1 has variance kappa^(i/(D-1)), independent.
data {
  int<lower=2> D;
  real<lower=1> kappa;
}
transformed data {
  vector[D] prec;
  for (i in 1:D) prec[i] = pow(kappa, -(i - 1.0) / (D - 1));
}
parameters {
  vector[D] x;
}
model {
  target += -0.5 * dot_product(prec, square(x));
}
