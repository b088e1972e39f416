# Warnings are errors for every target of ours; third-party headers come from
# /usr/include and are treated as system headers by the compiler.
function(berth_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
                                           -Wnull-dereference -Wformat=2 -Werror)
endfunction()
