# The Heartbeat sampler (issue 3): building blocks in process, known moments end to end,
# bitwise invariance over ranks x threads.
hb_add_test(test_heartbeat test_heartbeat.c TIMEOUT 600 LABELS mpi)
# [run] warmup = auto for Heartbeat: early stop on easy targets, the long schedule kept on
# kidiq, bitwise invariance, config errors.
hb_add_test(test_heartbeat_auto test_heartbeat_auto.c TIMEOUT 600 LABELS mpi data)
# [heartbeat] init = lbfgs: the optimiser on a needle, end to end on the needle, kilpisjarvi
# and the bimodal mixture, config errors, bitwise invariance over ranks x threads.
hb_add_test(test_heartbeat_lbfgs test_heartbeat_lbfgs.c TIMEOUT 600 LABELS mpi data)
