# Shared by scripts/test, scripts/demo: installs what wf needs from Debian's
# packages (only what is missing), then configures and builds with Ninja.
# Sourced, not run. Honours BUILD_DIR (default: build), BUILD_TYPE and
# WF_CMAKE_ARGS (extra arguments for cmake).

set -euo pipefail

WF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$WF_ROOT/build}"
BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}"

# Debian 12 packages. Boost must be 1.81 (libboost-all-dev is 1.74 and conflicts).
WF_PACKAGES=(
  g++ cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libprotobuf-dev protobuf-compiler
  catch2
)

wf_log() { printf '\n==> %s\n' "$*"; }

wf_install_packages() {
  local missing=()
  local p
  for p in "${WF_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  wf_log "installing Debian packages: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

wf_build() {
  wf_log "configuring ($BUILD_TYPE) in $BUILD_DIR"
  # shellcheck disable=SC2086
  cmake -S "$WF_ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${WF_CMAKE_ARGS:-} >/dev/null
  wf_log "building"
  cmake --build "$BUILD_DIR" --parallel "$(nproc)"
}
