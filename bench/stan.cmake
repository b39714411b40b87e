# bench/stan: grad_rate, gradients per second of any configured model (one chain and a SIMD
# batch), used by bench/stan/compare.py next to bench_grad. The Stan side needs R + rstan
# (scripts/setup-deps.sh --bench) and is never part of the tests.
add_executable(grad_rate ${CMAKE_CURRENT_SOURCE_DIR}/stan/grad_rate.c)
target_include_directories(grad_rate PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(grad_rate PRIVATE heartbeat m)
