#  node/embed.cmake — turn a file into a C source defining it as a string:
#      const char NAME[] = {...bytes..., 0};
#      const size_t NAME_size = (bytes without the NUL);
#  Run at build time: cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake
#  (node/CMakeLists.txt embeds node/dashboard.html this way: the binary
#  serves its dashboard with no file beside it.)
if (NOT IN OR NOT OUT OR NOT NAME)
    message (FATAL_ERROR "embed.cmake: needs -DIN=, -DOUT= and -DNAME=")
endif ()
file (READ "${IN}" hex HEX)
string (LENGTH "${hex}" hexlen)
math (EXPR size "${hexlen} / 2")
#  Two hex digits per byte -> "0xNN," and a line break every 16 bytes.
string (REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string (REGEX REPLACE "((0x..,){16})" "\\1\n    " bytes "${bytes}")
get_filename_component (base "${IN}" NAME)
file (WRITE "${OUT}.tmp"
"//  Generated from ${base} by node/embed.cmake; do not edit.\n"
"#include <stddef.h>\n"
"extern const char ${NAME}[];\n"
"extern const size_t ${NAME}_size;\n"
"const char ${NAME}[] = {\n    ${bytes}0x00};\n"
"const size_t ${NAME}_size = ${size};\n")
#  Replace only when changed, so an unchanged page relinks nothing.
execute_process (COMMAND "${CMAKE_COMMAND}" -E copy_if_different
                 "${OUT}.tmp" "${OUT}")
file (REMOVE "${OUT}.tmp")
