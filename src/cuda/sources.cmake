# The CUDA backend's sources, added to the openmla target when CUDA is on.
target_sources(openmla PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/backend.cu
  ${CMAKE_CURRENT_LIST_DIR}/combine/launch.cu
  ${CMAKE_CURRENT_LIST_DIR}/merge/backend.cu
  ${CMAKE_CURRENT_LIST_DIR}/merge/launch.cu
  ${CMAKE_CURRENT_LIST_DIR}/plan/launch.cu
  ${CMAKE_CURRENT_LIST_DIR}/portable/launch.cu
)
target_link_libraries(openmla PUBLIC CUDA::cudart)
target_compile_definitions(openmla PUBLIC OPENMLA_WITH_CUDA=1)
target_compile_options(openmla PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xptxas=-v -lineinfo -Xcompiler=-Wall>)
