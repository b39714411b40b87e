# Core: RNG, reductions, adaptation building blocks, config.
hb_add_test(test_core test_core.c)
add_executable(test_reduce test_reduce.c)
target_include_directories(test_reduce PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(test_reduce PRIVATE hbtest)
foreach(n 1 2 4)
  add_test(NAME test_reduce_np${n} COMMAND ${MPIEXEC_EXECUTABLE} -n ${n} --oversubscribe $<TARGET_FILE:test_reduce>)
  set_tests_properties(test_reduce_np${n} PROPERTIES ENVIRONMENT "${HB_TEST_ENV}" TIMEOUT 120)
endforeach()
