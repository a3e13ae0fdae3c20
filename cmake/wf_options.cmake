# Warnings are errors for wf's own code; dependencies are included as system
# headers (Boost's and Protobuf's come from /usr/include), so theirs are not.
function(wf_project_warnings target)
  # -Wmismatched-new-delete: a GCC 12 false positive on Asio coroutine frames
  # (operator new and delete of awaitable_frame_base do match).
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-mismatched-new-delete)
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
endif()
