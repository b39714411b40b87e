# The installed package: `cmake --install` into a temporary prefix, the installed program run
# from there, and a project outside the tree built against it with find_package(heartbeat).
# Under HB_SANITIZE the project is built with the sanitizers too (the ASan runtime must come
# first in a program that loads the instrumented library).
set(hb_consumer_cflags "")
if(HB_SANITIZE)
  set(hb_consumer_cflags "-fsanitize=address,undefined")
endif()
hb_add_test(test_install test_install.c TIMEOUT 300)
set_property(TEST test_install APPEND PROPERTY ENVIRONMENT
             "HB_BUILD_DIR=${CMAKE_BINARY_DIR}" "HB_CMAKE=${CMAKE_COMMAND}"
             "HB_CONSUMER_CFLAGS=${hb_consumer_cflags}")
