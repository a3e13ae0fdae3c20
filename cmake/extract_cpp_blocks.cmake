# Concatenates the ```cpp blocks of a Markdown file (INPUT) into one C++
# source file (OUTPUT), so that a guide's code is compiled and run as a test.
file(READ ${INPUT} text)
# CMake lists are ;-separated: hide the code's semicolons while splitting.
string(REPLACE ";" "@WF_SEMICOLON@" text "${text}")
string(REGEX MATCHALL "```cpp\n[^`]*```" blocks "${text}")
set(out "// Generated from ${INPUT}: do not edit.\n")
foreach(block IN LISTS blocks)
  string(REGEX REPLACE "^```cpp\n" "" block "${block}")
  string(REGEX REPLACE "```$" "" block "${block}")
  string(APPEND out "${block}\n")
endforeach()
string(REPLACE "@WF_SEMICOLON@" ";" out "${out}")
file(WRITE ${OUTPUT}.tmp "${out}")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
