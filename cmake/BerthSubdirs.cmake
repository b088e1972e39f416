# Adds every immediate subdirectory of <dir> that has a CMakeLists.txt, in name
# order, so each component owns its own CMakeLists and nobody edits a shared list.
function(berth_add_subdirs dir)
  file(GLOB children LIST_DIRECTORIES true RELATIVE "${dir}" CONFIGURE_DEPENDS "${dir}/*")
  list(SORT children)
  foreach(child IN LISTS children)
    if(IS_DIRECTORY "${dir}/${child}" AND EXISTS "${dir}/${child}/CMakeLists.txt")
      add_subdirectory("${dir}/${child}")
    endif()
  endforeach()
endfunction()
