# Data input, logistic regression and the posteriordb reference targets (issue 7).
hb_add_test(test_data test_data.c LABELS data)
hb_add_test(test_targets test_targets.c LABELS data targets)
hb_add_test(test_logistic test_logistic.c LABELS data)
# The tests read check_points.json / write fixtures with cJSON directly.
target_link_libraries(test_data PRIVATE PkgConfig::CJSON)
target_link_libraries(test_targets PRIVATE PkgConfig::CJSON)
# End to end: `heartbeat run` (MALA) on the reference targets, compared with reference.json.
hb_add_test(test_targets_mala test_targets_mala.c LABELS data targets slow TIMEOUT 600)
