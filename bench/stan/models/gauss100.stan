// 100-d iid standard Gaussian (heartbeat model `gaussian`, dim = 100)
data {
  int<lower=1> D;
}
parameters {
  vector[D] x;
}
model {
  target += -0.5 * dot_self(x);
}
