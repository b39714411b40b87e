# In-house vector math kernels and the random-variate generators built on them.
hb_add_test(test_vmath test_vmath.c)
