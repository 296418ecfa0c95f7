# Writes OUT (a .cpp defining aisio::report::kBuildCommit) from `git describe` of SRC,
# touching it only when the text changes (so an unchanged commit rebuilds nothing).
execute_process(COMMAND git -C "${SRC}" describe --always --dirty --tags
                OUTPUT_VARIABLE desc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR desc STREQUAL "")
  set(desc "unknown")
endif()
set(text "namespace aisio::report { extern const char* const kBuildCommit; const char* const kBuildCommit = \"${desc}\"; }\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
else()
  set(old "")
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
