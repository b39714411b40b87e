# The conformance suite over every registered sampler (moments, determinism, bitwise
# invariance over ranks x threads), and the NUTS/HMC specifics.
hb_add_test(test_conformance test_conformance.c TIMEOUT 900 LABELS mpi)
hb_add_test(test_nuts test_nuts.c TIMEOUT 600)
hb_add_test(test_pmm test_pmm.c TIMEOUT 600 LABELS mpi)
