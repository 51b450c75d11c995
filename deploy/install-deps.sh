#!/usr/bin/env bash
# Installs the Debian 12 packages that building, running and testing outreach need.
# Idempotent: installs only what is missing. Runs apt-get as root, or through sudo otherwise.
#   deploy/install-deps.sh            building, running, the unit and sanitizer tests
#   deploy/install-deps.sh --deploy   also what `make image` and `make test-deploy` need
#   deploy/install-deps.sh --bench    also what `make bench` needs (PostgreSQL, for its anchor)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  protobuf-compiler libprotobuf-dev
  libgrpc++-dev protobuf-compiler-grpc
  grpc-proto
  tzdata
  libabsl-dev
  # outreachctl's command line (subcommands, help, required flags, value checks); header-only.
  libcli11-dev
  librocksdb-dev
  libssl-dev
  libgtest-dev libgmock-dev
  libbenchmark-dev
  # Observability (README "Operations"): outreachd's /metrics (prometheus-cpp: registry and its
  # HTTP exposer), its JSON log records (nlohmann-json, header-only), and Prometheus itself, whose
  # server and promtool the tests run (the e2e scrape, the alert rules' unit tests); the system
  # service it installs is not used.
  prometheus-cpp-dev nlohmann-json3-dev
  prometheus
  # make test's instrumented stages: gcc's ASan, UBSan and TSan runtimes (test-asan, test-tsan),
  # clang with libFuzzer and its sanitizer runtimes (fuzz-smoke, fuzz), and the symbolizer that
  # puts file:line into their reports.
  libasan8 libubsan1 libtsan2
  clang-14 libclang-rt-14-dev llvm-14
  # The HTTP/2 proxy in front of outreachd (deploy/nginx/, README "Security"): e2e_test starts
  # /usr/sbin/nginx itself with its own configuration on loopback; the system service is not used.
  nginx
)
# Node.js and npm: the FHIR export's test (make test-unit) validates its files with a test-only
# npm package (tests/ctl/fhir), as the deploy tests do theirs (tests/deploy/k8s). A machine's own
# Node.js (its npm inside) is kept; Debian's otherwise.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
# The deployment (issue 15), with --deploy: podman and buildah build and run the image (runc as
# the runtime, catatonit as the pods' init for `podman kube play`, the CNI plugins for published
# ports); mmdebstrap makes the Debian root with systemd that the unit boots in; yamllint and
# kubectl check the Kubernetes manifests (kubectl: the machine's own when present, else Debian's
# kubernetes-client). npm, which installs the test-only schema validator (tests/deploy/k8s), is
# in the list above already.
if [ "${1:-}" = "--deploy" ]; then
  PACKAGES+=(podman buildah runc catatonit containernetworking-plugins
             golang-github-containers-common mmdebstrap uidmap
             systemd yamllint binutils)
  command -v kubectl >/dev/null 2>&1 || PACKAGES+=(kubernetes-client)
fi

# The benchmark's PostgreSQL anchor (issue 18), with --bench: Debian's postgresql (the server
# binaries, initdb, pg_ctl and pgbench); tests/bench/pg_anchor.sh runs a throwaway cluster of its
# own in the bench's scratch directory, never the system's "main" cluster.
if [ "${1:-}" = "--bench" ]; then
  PACKAGES+=(postgresql)
fi

# Packages that must be at least this version: nginx's rapid-reset mitigation (CVE-2023-44487)
# is in Debian 12's 1.22.1-9+deb12u11 (bookworm-security); an older one is upgraded.
MIN_VERSIONS=(
  "nginx 1.22.1-9+deb12u11"
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

for entry in "${MIN_VERSIONS[@]}"; do
  read -r pkg min <<<"$entry"
  have=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
  if [ -n "$have" ] && dpkg --compare-versions "$have" lt "$min"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-deps: not root and no sudo; install these packages: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
