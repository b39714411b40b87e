# Gradient throughput of the data-driven models (issue 7): bench_grad [SHARED_DIR] [secs] [N K].
# With OpenBLAS present it also times a dgemm-based logistic gradient for comparison.
add_executable(bench_grad ${CMAKE_CURRENT_SOURCE_DIR}/bench_grad.c)
target_include_directories(bench_grad PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_grad PRIVATE heartbeat OpenMP::OpenMP_C PkgConfig::SLEEF m)
pkg_check_modules(HB_BENCH_OPENBLAS IMPORTED_TARGET openblas)
if(HB_BENCH_OPENBLAS_FOUND)
  target_compile_definitions(bench_grad PRIVATE HB_BENCH_BLAS)
  target_link_libraries(bench_grad PRIVATE PkgConfig::HB_BENCH_OPENBLAS)
endif()
