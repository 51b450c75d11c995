#!/usr/bin/env bash
# Builds the image the systemd boot test runs (tests/deploy/systemd_test.cc): a Debian 12 root
# with systemd as PID 1, made with mmdebstrap from the Debian mirror apt already uses, plus the
# Debian packages of the shared libraries outreachd loads (found with ldd and dpkg -S), this
# build's outreachd and outreachctl, and deploy/systemd/outreachd.service enabled with the
# example environment file. Not a product image: the product image is deploy/image/.
#
#   deploy/systemd/build-test-image.sh BUILD_DIR [IMAGE] [CACHE_DIR]
#
# The root tarball is cached in CACHE_DIR (default BUILD_DIR/deploy-cache), keyed by its package
# list: mmdebstrap runs again only when that list changes.
set -euo pipefail

build_dir=${1:?usage: build-test-image.sh BUILD_DIR [IMAGE] [CACHE_DIR]}
image=${2:-localhost/outreach-systemd-test:latest}
cache=${3:-$build_dir/deploy-cache}
here=$(cd "$(dirname "$0")" && pwd)
binaries=("$build_dir/server/outreachd" "$build_dir/ctl/outreachctl")

# The packages owning each library the binaries load (Debian 12's merged /usr: try both paths).
libraries=$(ldd "${binaries[@]}" | awk '/=> \// {print $3}' | sort -u)
packages=$(for lib in $libraries; do
             dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null ||
               dpkg -S "/usr$lib"
           done | cut -d: -f1 | sort -u | tr '\n' ',')
# procps: /bin/kill, which the unit's ExecReload runs (Debian's is procps's, installed on any
# system but minbase).
packages="systemd,systemd-sysv,dbus,procps,${packages%,}"
mkdir -p "$cache"
key=$(printf '%s' "$packages" | sha256sum | cut -c1-16)
tarball=$cache/systemd-root-$key.tar
if [ ! -s "$tarball" ]; then
  echo "build-test-image: mmdebstrap bookworm with $packages"
  mirror=http://deb.debian.org/debian
  mmdebstrap --quiet --mode=root --variant=minbase --include="$packages" \
    --aptopt='Apt::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$cache/partial-$key.tar" "deb $mirror bookworm main" \
    "deb http://deb.debian.org/debian-security bookworm-security main"
  mv "$cache/partial-$key.tar" "$tarball"  # (mmdebstrap picks its output format by extension)
  find "$cache" -name 'systemd-root-*.tar' ! -name "$(basename "$tarball")" -delete
fi

base=localhost/outreach-systemd-base:$key
if ! podman image exists "$base"; then
  podman import --quiet --change 'CMD ["/sbin/init"]' "$tarball" "$base" >/dev/null
fi
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
for binary in "${binaries[@]}"; do
  strip --strip-unneeded -o "$context/$(basename "$binary")" "$binary"
done
cp "$here/outreachd.service" "$context/outreachd.service"
cp "$here/outreachd.env.example" "$context/outreachd.env"
cat > "$context/Containerfile" <<CONTAINERFILE
FROM $base
COPY outreachd outreachctl /usr/local/bin/
COPY outreachd.service /etc/systemd/system/outreachd.service
COPY outreachd.env /etc/outreach/outreachd.env
RUN systemctl enable outreachd.service
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
CONTAINERFILE
podman build --quiet --format oci -t "$image" -f "$context/Containerfile" "$context" >/dev/null
echo "build-test-image: $image (from $tarball)"
