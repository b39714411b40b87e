# A real one-node Slurm (private munged, slurmctld, slurmd -N localhost) runs the project's
# slurm/ scripts: one_node and multi_node bitwise equal to mpirun, preemptible signalled,
# checkpointed, requeued and resumed bitwise, the scaling arrays and their table (label slurm;
# SKIP with the reason when Slurm cannot run here: not root, slurm-wlm / munge not installed).
add_test(NAME test_slurm COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/slurm/run_slurm_test.sh
         $<TARGET_FILE:heartbeat_cli> ${CMAKE_SOURCE_DIR})
set_tests_properties(test_slurm PROPERTIES TIMEOUT 300 LABELS slurm SKIP_RETURN_CODE 77
                     RUN_SERIAL TRUE)
