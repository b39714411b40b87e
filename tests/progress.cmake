# Progress lines (src/core/progress.c): log and terminal forms, rates after a resume, the final
# line, and heartbeat run's progress end to end.
hb_add_test(test_progress test_progress.c TIMEOUT 120)
