# Installs the wf build tree into a scratch prefix, then configures, builds and
# runs two projects against it: tests/consumer (find_package(wf COMPONENTS
# ...) with the optional targets) and tests/consumer/core (the core alone, and
# the other ways of calling find_package(wf)).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${WF_BINARY_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "installing wf failed")
endif()
foreach(project IN ITEMS core full)
  if(project STREQUAL "core")
    set(source ${CONSUMER_SOURCE_DIR}/core)
    set(program consumer_core)
  else()
    set(source ${CONSUMER_SOURCE_DIR})
    set(program consumer)
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${source} -B ${WORK_DIR}/build-${project} -G ${GENERATOR}
                          -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release
                          "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_CXX_FLAGS=${CONSUMER_FLAGS}"
                  RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "configuring the consumer (${project}) failed")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build-${project} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "building the consumer (${project}) failed")
  endif()
  execute_process(COMMAND ${WORK_DIR}/build-${project}/${program} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "the consumer (${project}) failed")
  endif()
endforeach()
