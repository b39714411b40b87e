# Issue-3 benchmark of the Heartbeat sampler (against ULA and MALA; bias floor; warmup and
# subchain-length sweeps): `cmake --build BUILD --target bench_heartbeat` runs
# bench/heartbeat/run.sh into BUILD/bench_heartbeat and prints report.py's tables (about
# 20 minutes on 2 cores; never part of the tests).
add_custom_target(bench_heartbeat
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/heartbeat/run.sh ${CMAKE_BINARY_DIR} ${CMAKE_BINARY_DIR}/bench_heartbeat
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/heartbeat/report.py ${CMAKE_BINARY_DIR}/bench_heartbeat
  DEPENDS heartbeat_cli
  USES_TERMINAL)
