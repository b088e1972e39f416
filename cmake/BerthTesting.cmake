# berth_add_catch_test(<name> SOURCES <src>... [LIBS <lib>...]
#                      LABELS <kind> <component>...
#                      [TIMEOUT <seconds>] [RESOURCE_LOCK <resource>...] [NEEDS_PACK])
#
# One Catch2 executable; each TEST_CASE becomes its own ctest test "<name>: <case>".
#
# <kind> is exactly one of:
#   unit         no process of berth's is started; seconds          (timeout 60 s)
#   integration  real processes (dockerd, berth-init, berthd) but no whole engine (timeout 180 s)
#   e2e          a whole berthd with an engine in a namespace environment (timeout 300 s)
#   vm           boots a QEMU VM (TCG here); runs alone (timeout 600 s)
# so `ctest -L unit|integration|e2e|vm` together list every test exactly once.
# The other labels name the component (wsl2, hyperv, vpnkit, engine_proxy, ...).
#
# RESOURCE_LOCK names what the test cannot share with another test running at
# the same time (ctest -j): e.g. a fixed host port. NEEDS_PACK: the test's
# berthd uses the version pack and base image built once per test run
# (tests/support/pack_cache.hpp), so berth-pack and berth-init must be built.
set(BERTH_TEST_KINDS unit integration e2e vm)
set(BERTH_TEST_TIMEOUT_unit 60)
set(BERTH_TEST_TIMEOUT_integration 180)
set(BERTH_TEST_TIMEOUT_e2e 300)
set(BERTH_TEST_TIMEOUT_vm 600)

# Test code (test executables, their helpers, Catch2's main, the tests'
# precompiled header) is built without optimisation in every preset, warnings
# as errors as everywhere. What the tests test, the product's libraries and
# programs, keeps the preset's flags (-O2 in release, ASan and UBSan in dev); -O2 on the tests' own
# Catch2 and nlohmann::json templates was about 40% of the release build's
# compile time for no benefit. The fuzz preset keeps its optimisation.
function(berth_test_code target)
  berth_warnings(${target})
  set_target_properties(${target} PROPERTIES BERTH_TEST_CODE ON)  # the sanitizer preset leaves it uninstrumented
  if(NOT BERTH_FUZZ)
    target_compile_options(${target} PRIVATE -O0)
  endif()
endfunction()

function(berth_add_catch_test name)
  cmake_parse_arguments(T "NEEDS_PACK" "TIMEOUT" "SOURCES;LIBS;LABELS;RESOURCE_LOCK" ${ARGN})
  set(kind "")
  foreach(label IN LISTS T_LABELS)
    if(label IN_LIST BERTH_TEST_KINDS)
      if(kind)
        message(FATAL_ERROR "berth_add_catch_test(${name}): two kinds in LABELS (${kind}, ${label}); give exactly one")
      endif()
      set(kind ${label})
    endif()
  endforeach()
  if(NOT kind)
    message(FATAL_ERROR "berth_add_catch_test(${name}): LABELS needs exactly one of ${BERTH_TEST_KINDS}")
  endif()
  list(LENGTH T_LABELS n_labels)
  if(n_labels LESS 2)
    message(FATAL_ERROR "berth_add_catch_test(${name}): LABELS needs a component besides '${kind}'")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT ${BERTH_TEST_TIMEOUT_${kind}})
  endif()
  if(BERTH_SANITIZE)
    math(EXPR T_TIMEOUT "${T_TIMEOUT} * 2")  # ASan and UBSan make our own code several times slower
  endif()

  add_executable(${name} ${T_SOURCES} $<TARGET_OBJECTS:berth_catch_main>)
  target_link_libraries(${name} PRIVATE Catch2::Catch2 berth_test_support ${T_LIBS})
  target_precompile_headers(${name} REUSE_FROM berth_test_pch)
  berth_test_code(${name})
  if(kind STREQUAL "vm")
    add_dependencies(berth_tests ${name})
  else()
    add_dependencies(berth_tests_but_vm ${name})
  endif()
  # --warn NoTests: a test whose filter matches no test case fails instead of passing
  # with nothing run (a name with ';' in it is split in two by CMake, and both halves
  # matched nothing: nine cases never ran until this was caught).
  catch_discover_tests(${name} TEST_PREFIX "${name}: " TEST_LIST ${name}_TESTS EXTRA_ARGS --warn NoTests)

  # Properties whose values are lists (LABELS, RESOURCE_LOCK) cannot pass through
  # catch_discover_tests' PROPERTIES (it splits them), so they are set by a file
  # ctest includes after the discovered tests, on the list discovery made.
  set(props "LABELS [==[${T_LABELS}]==] TIMEOUT ${T_TIMEOUT}")
  set(locks ${T_RESOURCE_LOCK})
  if(kind STREQUAL "vm")
    # A TCG VM keeps both cores busy: nothing runs beside it, and one VM at a time.
    string(APPEND props " PROCESSORS 2")
    list(APPEND locks vm)
  endif()
  if(locks)
    string(APPEND props " RESOURCE_LOCK [==[${locks}]==]")
  endif()
  if(T_NEEDS_PACK)
    add_dependencies(${name} berth-pack berth-init)
  endif()
  set(props_file "${CMAKE_CURRENT_BINARY_DIR}/${name}_properties.cmake")
  file(WRITE "${props_file}"
       "if(${name}_TESTS)\n  set_tests_properties(\${${name}_TESTS} PROPERTIES ${props})\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${props_file}")
endfunction()
