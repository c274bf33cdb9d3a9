# Sourced by scripts/test and scripts/demo: installs the build tools openmla needs when they are
# missing (Debian / Ubuntu, apt). Nothing is installed, and apt is not touched, when all are present.

# The Debian package that provides each missing tool.
missing_build_packages() {
  local packages=()
  command -v cmake >/dev/null || packages+=(cmake)
  command -v ninja >/dev/null || packages+=(ninja-build)
  command -v g++ >/dev/null || packages+=(g++)
  [[ -f /usr/include/gtest/gtest.h ]] || packages+=(libgtest-dev)
  echo "${packages[@]}"
}

# What scripts/test-python needs from the system: python3 with venv and the headers to build the module.
missing_python_packages() {
  local packages=()
  if ! command -v python3 >/dev/null; then
    packages+=(python3 python3-venv python3-dev)
  else
    python3 -c "import ensurepip, venv" 2>/dev/null || packages+=(python3-venv)
    [[ -f $(python3 -c "import sysconfig; print(sysconfig.get_paths()['include'])")/Python.h ]] ||
      packages+=(python3-dev)
  fi
  echo "${packages[@]}"
}

# ensure_build_deps [python]: the C++ build tools, and with "python" what scripts/test-python needs.
ensure_build_deps() {
  local packages=()
  read -ra packages <<<"$(missing_build_packages)"
  if [[ ${1:-} == python ]]; then
    local python_packages=()
    read -ra python_packages <<<"$(missing_python_packages)"
    packages+=("${python_packages[@]}")
  fi
  if ((${#packages[@]} == 0)); then
    return
  fi
  if ! command -v apt-get >/dev/null; then
    echo "missing ${packages[*]} and no apt-get to install them; install them and rerun" >&2
    exit 1
  fi
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
  fi
  echo "installing ${packages[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
}
