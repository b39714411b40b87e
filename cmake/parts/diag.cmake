# Diagnostics (src/diag): autocovariances by FFTW3 (Debian libfftw3-dev), linked privately.
pkg_check_modules(FFTW3 REQUIRED IMPORTED_TARGET fftw3)
target_link_libraries(heartbeat PRIVATE PkgConfig::FFTW3)
