# The CUDA backend's sources, added to the openmla target when CUDA is on.
target_sources(openmla PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/backend.cu
  ${CMAKE_CURRENT_LIST_DIR}/cache/backend.cu
  ${CMAKE_CURRENT_LIST_DIR}/cache/launch.cu
  ${CMAKE_CURRENT_LIST_DIR}/combine/launch.cu
  ${CMAKE_CURRENT_LIST_DIR}/merge/backend.cu
  ${CMAKE_CURRENT_LIST_DIR}/merge/launch.cu
  ${CMAKE_CURRENT_LIST_DIR}/plan/launch.cu
  ${CMAKE_CURRENT_LIST_DIR}/portable/launch.cu
  ${CMAKE_CURRENT_LIST_DIR}/sm90/launch.cu
  ${CMAKE_CURRENT_LIST_DIR}/sm90/instantiations/bf16.cu
  ${CMAKE_CURRENT_LIST_DIR}/sm90/instantiations/bf16_fp8.cu
  ${CMAKE_CURRENT_LIST_DIR}/sm90/instantiations/fp16.cu
  ${CMAKE_CURRENT_LIST_DIR}/sm90/instantiations/fp16_fp8.cu
)
# The Hopper kernel's device code exists only in the sm_90a pass (sm90/kernel.cuh guards it with
# __CUDA_ARCH_FEAT_SM90_ALL; other passes compile an empty body), so the host may select that kernel
# only when the build has an sm_90a pass.
get_target_property(openmla_cuda_architectures openmla CUDA_ARCHITECTURES)
if(openmla_cuda_architectures MATCHES "(^|;)90a")
  target_compile_definitions(openmla PRIVATE OPENMLA_WITH_SM90A=1)
endif()
# The CUDA runtime is linked statically: a program that links openmla needs the NVIDIA driver at run
# time, not libcudart.so. The public headers use no CUDA type, so nothing of CUDA is public.
target_link_libraries(openmla PRIVATE CUDA::cudart_static)
target_compile_definitions(openmla PUBLIC OPENMLA_WITH_CUDA=1)
target_compile_options(openmla PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo>)
if(OPENMLA_PTXAS_VERBOSE)
  target_compile_options(openmla PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xptxas=-v>)
endif()
