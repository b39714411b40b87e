# Checkpoint and resume (issue 6): bitwise resume for every sampler, refusals, fault
# injection, SIGKILLs.
hb_add_test(test_checkpoint test_checkpoint.c TIMEOUT 900 LABELS mpi)
