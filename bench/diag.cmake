# Diagnostics (issue 4): `heartbeat summary` on 4096 chains x 1000 draws x 100 coordinates next
# to a plain h5py read of the same file. Run: bench_summary build/heartbeat [C N D] [FILE]
add_executable(bench_summary ${CMAKE_CURRENT_SOURCE_DIR}/bench_summary.c)
target_include_directories(bench_summary PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_summary PRIVATE heartbeat m)
