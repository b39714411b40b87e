# Output file tests: the parallel writer and the serial reader on 1, 2 and 4 ranks (one source),
# including netCDF/xarray checks through tests/py/check_arviz.py.
foreach(n 1 2 4)
  hb_add_test(h5out_${n} test_h5out.c RANKS ${n} LABELS io mpi)
endforeach()
# hbtest.c reads HDF5 files back; the library links HDF5 privately, so give hbtest the headers.
target_link_libraries(hbtest PUBLIC hdf5::hdf5)
