# bench/stan: grad_rate, gradients per second of any configured model (one chain and a SIMD
# batch), used by bench/stan/compare.py next to bench_grad. The Stan side needs R + rstan
# (scripts/setup-deps.sh --bench) and is never part of the tests.
add_executable(grad_rate ${CMAKE_CURRENT_SOURCE_DIR}/stan/grad_rate.c)
target_include_directories(grad_rate PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(grad_rate PRIVATE heartbeat m)
# `cmake --build BUILD --target bench_stan`: the whole comparison into BUILD/bench_stan (about
# 40 minutes on 2 cores, most of it Stan on diamonds; prints "skipped" without R and rstan).
add_custom_target(bench_stan
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/stan/compare.py --build ${CMAKE_BINARY_DIR}
          --skip-build --out ${CMAKE_BINARY_DIR}/bench_stan
  DEPENDS heartbeat_cli bench_grad grad_rate
  USES_TERMINAL)
