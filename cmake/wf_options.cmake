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
endif()
