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
    # What the installed package ships as include/aisio/FOLDER/h (cmake/library.cmake).
    set_property(GLOBAL APPEND PROPERTY AISIO_PUBLIC_HEADERS ${folder}/${h})
  endforeach()
  set(priv ${CMAKE_BINARY_DIR}/private/${folder})
  file(MAKE_DIRECTORY ${priv})
  file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${priv}/${folder} SYMBOLIC)
endfunction()

#
# A folder's static libraries (src/tools' aside) are also the parts libaisio.so is linked
# from (cmake/library.cmake), so they are compiled position-independent; with
# -fno-semantic-interposition, because nobody interposes our functions: GCC then still
# inlines and calls them directly, as it does for the executables that link them statically.
function(aisio_layer_library target)
  get_filename_component(folder ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  target_include_directories(${target} PUBLIC ${AISIO_PUBLIC_INCLUDE} PRIVATE ${CMAKE_BINARY_DIR}/private/${folder})
  set_target_properties(${target} PROPERTIES AISIO_LAYER ${folder})
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "STATIC_LIBRARY" AND NOT folder STREQUAL "tools")
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fno-semantic-interposition>)
    set_property(GLOBAL APPEND PROPERTY AISIO_LAYER_LIBRARIES ${target})
  endif()
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
