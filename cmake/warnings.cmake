# The warnings of every target the project compiles (the library, tests, benchmark, examples):
# openmla_warnings(target) adds them to C++ sources, and to CUDA sources through the host compiler.
set(OPENMLA_CXX_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion)
set(OPENMLA_CUDA_WARNINGS -Xcompiler=-Wall,-Wextra)

function(openmla_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:${OPENMLA_CXX_WARNINGS}>
    $<$<COMPILE_LANGUAGE:CUDA>:${OPENMLA_CUDA_WARNINGS}>)
endfunction()
