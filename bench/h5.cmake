# Output writer throughput: mpirun -n 2 h5_write_bench [--deflate 4] [--chunk-chains 8] ...
add_executable(h5_write_bench ${CMAKE_CURRENT_SOURCE_DIR}/h5_write_bench.c)
target_include_directories(h5_write_bench PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(h5_write_bench PRIVATE heartbeat)
