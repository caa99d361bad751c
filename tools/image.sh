#!/usr/bin/env bash
# Builds the ringside container image with buildah (Debian's package), from scratch:
# ringside and ringside-ca (stripped copies), exactly the shared objects they load (what
# the dynamic loader resolves for them, the loader included), /etc/passwd and /etc/group
# naming one non-root user (65532), a minimal /etc/nsswitch.conf, and /var/run/ringside
# (the default --cert-dir, owned by that user). No shell, no CA bundle: ringside trusts
# only the private CA given with --trust, and a cfssl --ca-url is plain HTTP.
# Entrypoint: /usr/bin/ringside; the health check is `ringside probe`.
#
#   tools/image.sh [BUILD_DIR [ARCHIVE]]
#
# BUILD_DIR (default: build) holds the binaries; ARCHIVE (default: BUILD_DIR/ringside-image.tar)
# receives the image as an OCI archive, for `skopeo copy oci-archive:ARCHIVE docker://...`
# or `podman load -i ARCHIVE`. The image is also committed to buildah's storage as
# localhost/ringside:VERSION; RINGSIDE_IMAGE_STORAGE=DIR puts that storage (vfs driver)
# under DIR instead of buildah's default, as the tests do. Needs root (buildah mount).
# The last line says the sizes: the image's files (uncompressed) and the archive.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build_dir=$(cd "${1:-build}" && pwd)
archive=${2:-$build_dir/ringside-image.tar}
ringside="$build_dir/ringside"
ringside_ca="$build_dir/tools/ca/ringside-ca"
uid=65532

die() { echo "image: $*" >&2; exit 1; }
command -v buildah >/dev/null || die "buildah is not installed (apt-get install buildah)"
[ "$(id -u)" = 0 ] || die "run as root (buildah mount of a scratch container needs it)"
for b in "$ringside" "$ringside_ca"; do [ -x "$b" ] || die "$b is missing: build first"; done

buildah=(buildah)
if [ -n "${RINGSIDE_IMAGE_STORAGE:-}" ]; then
  buildah+=(--root "$RINGSIDE_IMAGE_STORAGE/root" --runroot "$RINGSIDE_IMAGE_STORAGE/run"
            --storage-driver vfs)
fi

version=$("$ringside" --version | awk '{ print $2; exit }')
revision=$(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git -C "$here" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  revision="$revision-dirty"
fi
if ldd "$ringside" | grep -q 'libasan\|libubsan'; then
  echo "image: $build_dir is a sanitizer build: the image is for tests, not for deployment" >&2
fi

ctr=$("${buildah[@]}" from scratch)
cleanup() { "${buildah[@]}" rm "$ctr" >/dev/null 2>&1 || true; }
trap cleanup EXIT
root=$("${buildah[@]}" mount "$ctr")

install -d -m 0755 "$root/usr/bin" "$root/etc"
strip --strip-unneeded -o "$root/usr/bin/ringside" "$ringside"
strip --strip-unneeded -o "$root/usr/bin/ringside-ca" "$ringside_ca"

# The shared objects, at the paths the loader names (ld.so --list resolves them as the
# program would be loaded; the vDSO has no file).
interpreter=$(readelf -l "$ringside" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
[ -n "$interpreter" ] || die "no program interpreter in $ringside"
mapfile -t libraries < <(
  for b in "$ringside" "$ringside_ca"; do
    "$interpreter" --list "$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
  done | sort -u)
for lib in "${libraries[@]}"; do
  install -d "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

cat >"$root/etc/passwd" <<EOF
ringside:x:$uid:$uid:ringside:/nonexistent:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<EOF
ringside:x:$uid:
EOF
# Names resolve from /etc/hosts (which `ringside hosts` fills in), then DNS; the container
# runtime supplies both files.
cat >"$root/etc/nsswitch.conf" <<EOF
passwd: files
group: files
hosts: files dns
EOF
install -d -m 0700 -o "$uid" -g "$uid" "$root/var/run/ringside"

"${buildah[@]}" config \
  --entrypoint '["/usr/bin/ringside"]' --cmd '["--help"]' \
  --user "$uid:$uid" --workingdir / \
  --label org.opencontainers.image.title=ringside \
  --label org.opencontainers.image.description="TLS sidecar proxy (io_uring, wolfSSL)" \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.revision="$revision" \
  "$ctr"
content=$(du -sb --apparent-size "$root" | awk '{ print $1 }')
"${buildah[@]}" umount "$ctr" >/dev/null

image="localhost/ringside:$version"
"${buildah[@]}" commit --quiet --format oci --rm "$ctr" "$image" >/dev/null
trap - EXIT
rm -f "$archive"
"${buildah[@]}" push --quiet "$image" "oci-archive:$archive:ringside:$version" >/dev/null

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
archive_bytes=$(stat -c %s "$archive")
echo "image: $image (revision $revision): $content bytes of files ($(mib "$content")), archive $archive $archive_bytes bytes ($(mib "$archive_bytes"), layers gzip-compressed)"
