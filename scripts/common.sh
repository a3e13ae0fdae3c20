# Shared by scripts/test, scripts/demo: installs what wf needs from Debian's
# packages (only what is missing), then configures and builds with Ninja.
# Sourced, not run. Honours BUILD_DIR (default: build), BUILD_TYPE,
# WF_CMAKE_ARGS (extra arguments for cmake) and WF_WERROR (ON: warnings are
# errors; scripts/test sets it, a user's build leaves it off).

set -euo pipefail

WF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$WF_ROOT/build}"
BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}"

# Debian 12 packages. Boost must be 1.81 (libboost-all-dev is 1.74 and conflicts).
WF_PACKAGES=(
  g++ cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libssl-dev openssl
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libpqxx-dev postgresql-15 postgresql-client-15
  catch2 libcli11-dev
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

# wf_build [TARGET...]: everything, or only the TARGETs.
wf_build() {
  wf_log "configuring ($BUILD_TYPE${CXX:+, $CXX}) in $BUILD_DIR"
  # shellcheck disable=SC2086
  cmake -S "$WF_ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
    ${WF_WERROR:+-DWF_WERROR="$WF_WERROR"} ${WF_CMAKE_ARGS:-} >/dev/null
  wf_log "building ${*:-everything}"
  cmake --build "$BUILD_DIR" --parallel "$(nproc)" ${1:+--target "$@"}
}

# ---- a throwaway PostgreSQL 15 cluster for the tests

WF_PG_BIN=/usr/lib/postgresql/15/bin

# A TCP port on 127.0.0.1 nothing listens on, below Linux's ephemeral range
# (32768-60999), so that no outgoing connection takes it before its server starts.
wf_free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((10000 + RANDOM % 22000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# Starts a cluster (initdb as the postgres user when root, in a directory that
# user owns) on a free port of 127.0.0.1 and exports WF_TEST_PG_URL, unless
# WF_TEST_PG_URL is already set. wf_stop_postgres runs on exit, whatever happens.
wf_start_postgres() {
  if [ -n "${WF_TEST_PG_URL:-}" ]; then
    wf_log "using the PostgreSQL given by WF_TEST_PG_URL"
    return 0
  fi
  WF_PG_DIR="$(mktemp -d /tmp/wf-pg.XXXXXX)"
  WF_PG_RUNAS=""
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$WF_PG_DIR"
    WF_PG_RUNAS="runuser -u postgres --"
  fi
  local port
  port="$(wf_free_port)"
  wf_log "starting a throwaway PostgreSQL 15 on 127.0.0.1:$port ($WF_PG_DIR)"
  trap wf_stop_postgres EXIT
  $WF_PG_RUNAS "$WF_PG_BIN/initdb" -D "$WF_PG_DIR/data" -U postgres --auth=trust -E UTF8 >"$WF_PG_DIR/initdb.log" 2>&1 \
    || { cat "$WF_PG_DIR/initdb.log" >&2; return 1; }
  # Every local connection is trusted, but for one role that must give its
  # password: the wrong-password test (tests/store/postgres_test.cpp) logs in as it.
  local hba="$WF_PG_DIR/data/pg_hba.conf"
  { echo "host all wf_password_check 127.0.0.1/32 scram-sha-256"; cat "$hba"; } >"$WF_PG_DIR/pg_hba.new"
  cat "$WF_PG_DIR/pg_hba.new" >"$hba"  # rewritten in place: its owner stays the postgres user
  # The settings go in the cluster's own configuration, not on pg_ctl's command
  # line, so that a test that stops and starts the server (rather than
  # restarting it) gets the same port back.
  {
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$WF_PG_DIR'"
    echo "max_connections = 300"
  } >>"$WF_PG_DIR/data/postgresql.conf"
  $WF_PG_RUNAS "$WF_PG_BIN/pg_ctl" -D "$WF_PG_DIR/data" -l "$WF_PG_DIR/server.log" -w -t 60 start >/dev/null \
    || { cat "$WF_PG_DIR/server.log" >&2; return 1; }
  export WF_TEST_PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
  # For tests that restart the server (pg_ctl restart -m immediate).
  export WF_TEST_PG_DATA="$WF_PG_DIR/data"
  export WF_TEST_PG_CTL="$WF_PG_BIN/pg_ctl"
  export WF_TEST_PG_RUNAS="$WF_PG_RUNAS"
}

wf_stop_postgres() {
  if [ -n "${WF_PG_DIR:-}" ] && [ -d "$WF_PG_DIR/data" ]; then
    $WF_PG_RUNAS "$WF_PG_BIN/pg_ctl" -D "$WF_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$WF_PG_DIR"
  fi
}
