# Core benchmarks: the RNG roofline.
add_executable(bench_rng ${CMAKE_CURRENT_SOURCE_DIR}/bench_rng.c)
target_include_directories(bench_rng PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_rng PRIVATE heartbeat OpenMP::OpenMP_C)
