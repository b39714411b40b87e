# End-to-end tests of `heartbeat run`: samplers against known moments, bitwise invariance
# over ranks x threads, bad input.
hb_add_test(test_samplers test_samplers.c TIMEOUT 600)
hb_add_test(test_invariance test_invariance.c TIMEOUT 600 LABELS mpi)
hb_add_test(test_bad_input test_bad_input.c)
