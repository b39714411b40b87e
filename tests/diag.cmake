# Diagnostics (issue 4): ESS, R-hat, nested R-hat, MCSE against R posterior 1.4 fixtures and a
# reference implementation; `heartbeat summary` on run files, including bad and partial files.
hb_add_test(test_diag test_diag.c LABELS diag TIMEOUT 900)
hb_add_test(test_diag_summary test_diag_summary.c RANKS 1 LABELS diag io TIMEOUT 900)
