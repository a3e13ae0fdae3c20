# wf's own code builds without warnings; with WF_WERROR (wf's CI: scripts/test)
# they are errors. Off by default, so that a user's compiler or build type
# that warns where wf's CI does not cannot break their build. Dependencies are
# included as system headers (Boost's and Protobuf's come from /usr/include),
# so their warnings are not shown.
function(wf_project_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra $<$<BOOL:${WF_WERROR}>:-Werror>)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # A GCC 12 false positive on Asio coroutine frames (operator new and
    # delete of awaitable_frame_base do match). Clang has no such warning.
    target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
    # GCC 12 at -O3 (Release) warns falsely inside std::string's inlined
    # copies (GCC PR 105329, 105651): "specified bound ... exceeds maximum
    # object size", "pointer overflow".
    target_compile_options(${target} PRIVATE $<$<CONFIG:Release>:-Wno-stringop-overflow -Wno-restrict -Wno-array-bounds>)
  endif()
endfunction()

if(WF_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(WF_TSAN)
  if(WF_SANITIZE)
    message(FATAL_ERROR "WF_TSAN and WF_SANITIZE cannot be combined: ThreadSanitizer runs alone")
  endif()
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
  # ThreadSanitizer does not model std::atomic_thread_fence (GCC refuses it
  # under -Werror). Asio's fenced blocks become no-ops; its scheduler's mutexes,
  # which TSan does see, still order the handlers, so reports are not hidden.
  add_compile_definitions(BOOST_ASIO_DISABLE_FENCED_BLOCK)
  # The other fence is in Asio's reference count of a type-erased executor
  # too big for any_io_executor's buffer (a work-tracking one): GCC warns that
  # TSan cannot see it. The count's own atomics, which TSan does see, order
  # the last release; the warning is not an error here.
  add_compile_options(-Wno-error=tsan)
endif()
