#!/usr/bin/env bash
# Builds the outreachd OCI image with podman, from nothing but this machine's files (no image
# registry is needed or reachable): a root holding the project's Release binaries (stripped
# copies), exactly the shared libraries they load (ldd), tzdata's zoneinfo, the CA certificates
# and passwd/group files naming the non-root user outreach (uid/gid 10001). No shell, no package
# manager. deploy/image/Containerfile adds it to a `FROM scratch` image.
#
#   deploy/image/build-image.sh BUILD_DIR [IMAGE]     (IMAGE defaults to localhost/outreach:latest)
#
# Prints the image's size. CONTAINERS_CONF, if set, is passed on to podman (the tests write one).
set -euo pipefail

build_dir=${1:?usage: build-image.sh BUILD_DIR [IMAGE]}
image=${2:-localhost/outreach:latest}
here=$(cd "$(dirname "$0")" && pwd)
binaries=("$build_dir/server/outreachd" "$build_dir/ctl/outreachctl")
for binary in "${binaries[@]}"; do
  [ -x "$binary" ] || { echo "build-image: $binary is missing: build Release first" >&2; exit 1; }
done

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
root=$context/root
mkdir -p "$root"/usr/local/bin "$root"/usr/lib/x86_64-linux-gnu "$root"/usr/lib64 \
         "$root"/usr/share "$root"/etc/ssl/certs "$root"/tmp "$context/data"
# Debian 12's merged /usr: the loader and ldd's paths under /lib and /lib64 lead into /usr.
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"

for binary in "${binaries[@]}"; do
  strip --strip-unneeded -o "$root/usr/local/bin/$(basename "$binary")" "$binary"
done

# Every library the binaries load, and the dynamic loader, under the names they are asked for.
ldd "${binaries[@]}" | awk '/=> \// {print $3} /^\t\/lib64\/ld-linux/ {print $1}' | sort -u |
  while read -r lib; do
    case "$lib" in
      /lib64/*|/usr/lib64/*) dest=$root/usr/lib64/$(basename "$lib") ;;
      *) dest=$root/usr/lib/x86_64-linux-gnu/$(basename "$lib") ;;
    esac
    cp -L "$lib" "$dest"
  done

cp -a /usr/share/zoneinfo "$root/usr/share/zoneinfo"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf '%s\n' 'root:x:0:0:root:/root:/usr/sbin/nologin' \
  'outreach:x:10001:10001:outreach:/data:/usr/sbin/nologin' > "$root/etc/passwd"
printf 'root:x:0:\noutreach:x:10001:\n' > "$root/etc/group"
# The data volume's mount point, private (outreachd refuses a --db that others can read); the
# Containerfile gives it to the user. A new named volume takes its owner and mode from the image.
chmod 0700 "$context/data"
chmod 1777 "$root/tmp"

cp "$here/Containerfile" "$context/Containerfile"
podman build --quiet --no-cache --format oci -t "$image" -f "$context/Containerfile" "$context" \
  >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "build-image: $image: $((size / 1024 / 1024)) MiB ($size bytes)"
