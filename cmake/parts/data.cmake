# Model data: cJSON for CmdStan-style JSON data files.
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
target_link_libraries(heartbeat PRIVATE PkgConfig::CJSON)
