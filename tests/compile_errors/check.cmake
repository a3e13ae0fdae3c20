# Compiles SNIPPET (syntax only) with COMPILER and the wf headers in
# INCLUDE_DIR, and passes if the compiler refuses it with the message the
# snippet's first line gives ("// expect: <text>"): wf's static_asserts say
# what to do instead of an error from deep inside its templates.
file(STRINGS ${SNIPPET} first LIMIT_COUNT 1)
string(REGEX REPLACE "^// expect: " "" expected "${first}")
execute_process(COMMAND ${COMPILER} -std=c++20 -fsyntax-only -I${INCLUDE_DIR} ${SNIPPET}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SNIPPET} compiled; it should not")
endif()
string(FIND "${out}" "${expected}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${SNIPPET} failed without the message '${expected}':\n${out}")
endif()
# One error, the assertion's: no cascade after it (GCC prints "required from"
# notes, which are fine). A snippet that breaks the rule shows what followed.
string(REGEX MATCHALL "error:" errors "${out}")
list(LENGTH errors n)
if(n GREATER 1)
  message(FATAL_ERROR "${SNIPPET}: ${n} errors, not just the assertion's:\n${out}")
endif()
