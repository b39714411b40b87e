# Diagnostics (issue 4): ESS, R-hat, nested R-hat, MCSE against R posterior 1.4 fixtures and a
# reference implementation; `heartbeat summary` on run files, including bad and partial files.
hb_add_test(test_diag test_diag.c LABELS diag TIMEOUT 900)
