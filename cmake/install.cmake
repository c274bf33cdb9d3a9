# Installs openmla as a CMake package: find_package(openmla) gives the target openmla::openmla.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS openmla EXPORT openmlaTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/openmla DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT openmlaTargets NAMESPACE openmla:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/openmla)

configure_package_config_file(cmake/openmlaConfig.cmake.in
  ${PROJECT_BINARY_DIR}/openmlaConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/openmla)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/openmlaConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/openmlaConfig.cmake ${PROJECT_BINARY_DIR}/openmlaConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/openmla)
