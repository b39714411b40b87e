# Core benchmarks: the RNG roofline.
add_executable(bench_rng ${CMAKE_CURRENT_SOURCE_DIR}/bench_rng.c)
target_include_directories(bench_rng PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_rng PRIVATE heartbeat OpenMP::OpenMP_C)
# The pieces of a random-walk Metropolis step on the 1-D mixture, timed alone (the seed
# benchmark's floor).
add_executable(bench_kernels ${CMAKE_CURRENT_SOURCE_DIR}/bench_kernels.c)
target_include_directories(bench_kernels PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_kernels PRIVATE heartbeat OpenMP::OpenMP_C m)
# ULA against the roofline, interleaved in one process.
add_executable(bench_ula ${CMAKE_CURRENT_SOURCE_DIR}/bench_ula.c)
target_include_directories(bench_ula PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_ula PRIVATE heartbeat MPI::MPI_C OpenMP::OpenMP_C m)
