#!/usr/bin/env bash
# Builds wolfSSL from Debian's source package with AES-NI, Intel assembly and SP
# assembly, as a static library, into a cache directory keyed by the options.
# Debian's libwolfssl-dev is built without them: ~30x slower AES-GCM, ~4x slower ECDSA.
# Usage: tools/build-wolfssl.sh [PREFIX_ROOT]   prints the install prefix on stdout.
set -euo pipefail

root=${1:-/opt/ringside-deps}
version=5.5.4

opts=(
  --enable-static --disable-shared --disable-examples --disable-crypttests
  --enable-aesni --enable-intelasm --enable-sp --enable-sp-asm
  --enable-tls13 --disable-oldtls --enable-aesgcm=small --enable-chacha --enable-poly1305
  --enable-ecc --enable-curve25519 --enable-ed25519 --enable-rsapss --enable-supportedcurves
  --enable-sni --enable-alpn --enable-session-ticket --enable-altcertchains
  --enable-certgen --enable-certreq --enable-certext --enable-keygen
  --enable-harden --disable-jobserver --disable-hashdrbg
)
cflags="-O2 -g -fPIC -DWOLFSSL_ALT_NAMES -DHAVE_EX_DATA -DNO_WOLFSSL_DIR"
# Per-connection memory: no --enable-opensslextra (it embeds a 3.6 KB copy of the peer
# certificate in every WOLFSSL and keeps the cipher suite list after the handshake), and
# --enable-aesgcm=small (no 512-byte GHASH table per direction: AES-NI's PCLMUL path does
# not use it). The verify-callback behaviour that opensslextra implied is kept explicitly.
cflags="$cflags -DWOLFSSL_ALWAYS_VERIFY_CB -DWOLFSSL_VERIFY_CB_ALL_CERTS -DWOLFSSL_EXTRA_ALERTS"
# Seed every WOLFSSL's RNG with getrandom(2) instead of opening /dev/urandom: no
# descriptor (a handshake still works when the process is out of them) and no open()
# on a worker's path.
cflags="$cflags -DWOLFSSL_GETRANDOM"
# Random bytes from getrandom(2) through a per-thread read-ahead buffer instead of a
# Hash-DRBG (with its known-answer test) per connection: see tools/wolfssl-rng.c.
rng_source="$(cd "$(dirname "$0")" && pwd)/wolfssl-rng.c"
cflags="$cflags -DCUSTOM_RAND_GENERATE_BLOCK=ringside_random_block"

# X25519 key generation as a fixed-base multiplication with Ed25519's precomputed table
# (BoringSSL does the same) instead of a second Montgomery ladder: about a quarter of a
# full handshake's CPU. --enable-ed25519 is what builds that table (ge_operations.c).
# Checked against the ladder and RFC 7748's vectors by tests/tls/x25519_test.cc.
# wolfSSL frees (after zeroing) and reallocates its 16 KB input buffer for every record
# it reads; wolfssl-keep-input-buffer.patch keeps it while records keep coming and adds
# wolfSSL_ringside_release_input(), which TlsSession calls once its input is drained, so
# an idle connection still holds no record buffer.
tools_dir="$(cd "$(dirname "$0")" && pwd)"
# wolfssl-sha256-shani.patch: SHA-256 with the SHA extensions when the CPU has them
# (5.5.4 has AVX2 code only; a TLS 1.3 handshake hashes ~150 blocks).
# wolfssl-ctx-alpn.patch: wolfSSL_CTX_UseALPN(), the ALPN list kept once per CTX (wolfSSL
# already looks there) instead of wolfSSL_UseALPN()'s copy in every session: a session
# allocates only the negotiated name. (The OpenSSL-compatible select callback needs
# opensslextra, which this build leaves out for per-connection memory, see above.)
# wolfssl-peer-leaf-callback.patch: wolfSSL_CTX_set_peer_leaf_cb(), the client's leaf as
# sent, before any signature of its chain is checked, so that an identity the listener's
# allow-list refuses costs no signature verification (docs/authz.md).
patches=("$tools_dir/wolfssl-x25519-fixed-base.patch" "$tools_dir/wolfssl-keep-input-buffer.patch"
  "$tools_dir/wolfssl-sha256-shani.patch" "$tools_dir/wolfssl-ctx-alpn.patch"
  "$tools_dir/wolfssl-peer-leaf-callback.patch")

key=$( (printf '%s\n' "$version" "${opts[@]}" "$cflags"; cat "$rng_source" "${patches[@]}") | sha256sum | cut -c1-12)
prefix="$root/wolfssl-$version-$key"
if [ -f "$prefix/.complete" ]; then
  echo "$prefix"
  exit 0
fi
mkdir -p "$root"
# One build at a time per prefix: a second caller waits, then finds it complete.
exec 9>"$root/.wolfssl-$key.lock"
flock 9
if [ -f "$prefix/.complete" ]; then
  echo "$prefix"
  exit 0
fi

work=$(mktemp -d /tmp/ringside-wolfssl.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "building wolfSSL $version into $prefix (a few minutes)" >&2
apt-get source -qq "wolfssl=$version*" >/dev/null 2>&1 || apt-get source -qq wolfssl >/dev/null
cd wolfssl-"$version"*/
for p in "${patches[@]}"; do
  patch -p1 --forward --quiet <"$p" || { echo "wolfSSL: $p does not apply" >&2; exit 1; }
done
./autogen.sh >/dev/null 2>&1
# The declaration wolfSSL's random.c needs for the custom generator.
printf '#ifndef __ASSEMBLER__\nint ringside_random_block(unsigned char* out, unsigned int size);\n#endif\n' >ringside_rng.h
CFLAGS="$cflags -include $PWD/ringside_rng.h" ./configure --prefix="$prefix" "${opts[@]}" >build.log 2>&1 || { tail -30 build.log >&2; exit 1; }
make -j"$(nproc)" >>build.log 2>&1 || { grep -m5 -B2 -A5 -i "error:\|error 1" build.log >&2; exit 1; }
make install >>build.log 2>&1
cc -O2 -fPIC -c "$rng_source" -o ringside_rng.o
ar rcs "$prefix/lib/libwolfssl.a" ringside_rng.o
touch "$prefix/.complete"
echo "$prefix"
