# Each folder of src/ is a layer with a public interface and private internals:
#
#   aisio_layer(PUBLIC_HEADERS a.hpp b.hpp ...)   in src/FOLDER/CMakeLists.txt, once
#   aisio_layer_library(TARGET)                   for each library the folder builds
#
# The public headers are linked into ${CMAKE_BINARY_DIR}/include/FOLDER/, the one
# include tree every library and program sees (and what an installed package ships).
# All of a folder's headers are reachable as "FOLDER/x.hpp" only from that folder's own
# libraries, through ${CMAKE_BINARY_DIR}/private/FOLDER/FOLDER -> src/FOLDER, and from
# the tests of those libraries. So including another folder's internal header does not
# compile: the build is the check. A public header may include public headers only.
set(AISIO_PUBLIC_INCLUDE ${CMAKE_BINARY_DIR}/include)

function(aisio_layer)
  cmake_parse_arguments(L "" "" "PUBLIC_HEADERS" ${ARGN})
  get_filename_component(folder ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  set(pub ${AISIO_PUBLIC_INCLUDE}/${folder})
  file(REMOVE_RECURSE ${pub})  # a header taken off the list disappears from the tree
  foreach(h IN LISTS L_PUBLIC_HEADERS)
    if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${h})
      message(FATAL_ERROR "src/${folder}: public header ${h} does not exist")
    endif()
    get_filename_component(dir ${pub}/${h} DIRECTORY)
    file(MAKE_DIRECTORY ${dir})
    file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR}/${h} ${pub}/${h} SYMBOLIC)
  endforeach()
  set(priv ${CMAKE_BINARY_DIR}/private/${folder})
  file(MAKE_DIRECTORY ${priv})
  file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${priv}/${folder} SYMBOLIC)
endfunction()

function(aisio_layer_library target)
  get_filename_component(folder ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  target_include_directories(${target} PUBLIC ${AISIO_PUBLIC_INCLUDE} PRIVATE ${CMAKE_BINARY_DIR}/private/${folder})
  set_target_properties(${target} PROPERTIES AISIO_LAYER ${folder})
endfunction()

# The private include root of the layers `libs` belong to: tests (and fuzzers) see the
# internals of what they test.
function(aisio_private_includes target)
  foreach(lib IN LISTS ARGN)
    if(TARGET ${lib})
      get_target_property(folder ${lib} AISIO_LAYER)
      if(folder)
        target_include_directories(${target} PRIVATE ${CMAKE_BINARY_DIR}/private/${folder})
      endif()
    endif()
  endforeach()
endfunction()
