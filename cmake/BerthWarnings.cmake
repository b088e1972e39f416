# Warnings are errors for every target of ours; third-party headers come from
# /usr/include and are treated as system headers by the compiler.
function(berth_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
                                           -Wnull-dereference -Wformat=2 -Werror)
  # GCC 12 reports out-of-bounds memcpy inside std::string's operator+ chains at -O2
  # where there is none (GCC bugs 105329 and 105651, fixed in GCC 13); which chains it
  # flags changes with inlining, so it is off for GCC 12 only. ASan checks real bounds.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-array-bounds -Wno-stringop-overflow)
  endif()
endfunction()
