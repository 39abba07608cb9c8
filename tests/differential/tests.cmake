# The differential check of our response reader (common/response.h) against
# two reference parsers, llhttp (Node.js) and CPython's http.client, on a few
# thousand generated responses: tests/differential/compare.py, and the
# deliberate disagreements it allows in docs/http-framing.md.
# Included from tests/CMakeLists.txt, after `python` and `emulator` are set.

add_executable(response_verdict ${CMAKE_CURRENT_LIST_DIR}/response_verdict.cpp)
target_link_libraries(response_verdict PRIVATE common)

# Exit 77 (skip) when node is missing, unless CI=true.
add_test(NAME differential:llhttp-and-cpython
         COMMAND ${python} -S ${CMAKE_CURRENT_LIST_DIR}/compare.py
                 --root ${PROJECT_SOURCE_DIR}
                 --reader $<TARGET_FILE:response_verdict>
                 --emulator "${emulator}"
                 --work-dir ${CMAKE_CURRENT_BINARY_DIR}/differential)
set_tests_properties(differential:llhttp-and-cpython PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 60)
