# Model data and data-driven models: cJSON for CmdStan-style JSON data, OpenBLAS (serial
# calls, one thread) for the logistic-regression batch gradient.
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
target_link_libraries(heartbeat PRIVATE PkgConfig::CJSON PkgConfig::OPENBLAS)
