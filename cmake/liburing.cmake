# aisio_use_liburing(TARGET LABEL): io_uring through liburing when it is installed
# (the static archive in the guest's -static build), AISIO_HAVE_URING=0 otherwise.
find_path(AISIO_URING_INCLUDE liburing.h)
find_library(AISIO_URING_LIB NAMES uring)
function(aisio_use_liburing target label)
  if(AISIO_URING_INCLUDE AND AISIO_URING_LIB)
    target_compile_definitions(${target} PRIVATE AISIO_HAVE_URING=1)
    target_include_directories(${target} PRIVATE ${AISIO_URING_INCLUDE})
    if(AISIO_STATIC)
      target_link_libraries(${target} PUBLIC uring)  # -static picks liburing.a
    else()
      target_link_libraries(${target} PUBLIC ${AISIO_URING_LIB})
    endif()
  else()
    message(STATUS "${label}: liburing not found, io_uring disabled")
    target_compile_definitions(${target} PRIVATE AISIO_HAVE_URING=0)
  endif()
endfunction()
