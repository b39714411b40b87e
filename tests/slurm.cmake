# A real one-node Slurm running the project's slurm/ scripts (label slurm; skipped when
# slurm-wlm / munge are not installed).
add_test(NAME test_slurm COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/slurm/run_slurm_test.sh
         $<TARGET_FILE:heartbeat_cli> ${CMAKE_SOURCE_DIR})
set_tests_properties(test_slurm PROPERTIES TIMEOUT 600 LABELS slurm SKIP_RETURN_CODE 77
                     RUN_SERIAL TRUE)
