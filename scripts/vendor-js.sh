#!/usr/bin/env bash
# Refreshes the browser libraries vendored under static/vendor/ from the npm registry and
# verifies them against static/vendor/SHA256SUMS; with --check, only verifies the committed
# files (no network). The client has no build step: these exact files are compiled into the
# binary (src/pages.rs) and served as they are.
#
#   scripts/vendor-js.sh           fetch the pinned versions, copy the files, verify
#   scripts/vendor-js.sh --check   verify the committed files only
#   scripts/vendor-js.sh --update  fetch, copy and rewrite SHA256SUMS (after changing a pin)
set -euo pipefail
cd "$(dirname "$0")/.."

# The pinned versions. Changing one means running --update and reviewing the diff.
NSFWJS=4.4.0
TFJS=4.22.0

vendor=static/vendor
sums=$vendor/SHA256SUMS

verify() {
  (cd "$vendor" && sha256sum --quiet --strict -c SHA256SUMS)
  # Nothing under static/vendor/ that the checksums do not name.
  local listed actual
  listed=$(sed -E 's/^[0-9a-f]{64}  //' "$sums" | sort)
  actual=$(cd "$vendor" && find . -type f ! -name SHA256SUMS ! -name README.md | sed 's|^\./||' | sort)
  if [ "$listed" != "$actual" ]; then
    echo "static/vendor/ holds files SHA256SUMS does not list, or misses some:" >&2
    diff <(echo "$listed") <(echo "$actual") >&2 || true
    exit 1
  fi
  echo "static/vendor/: every file matches SHA256SUMS"
}

case "${1:-}" in
  --check)
    verify
    exit 0
    ;;
  --update | "") ;;
  *)
    echo "usage: $0 [--check | --update]" >&2
    exit 2
    ;;
esac

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# npm checks each tarball against the registry's integrity hash as it downloads it.
(cd "$scratch" && npm pack --silent "nsfwjs@$NSFWJS" "@tensorflow/tfjs@$TFJS" \
  "@tensorflow/tfjs-backend-wasm@$TFJS" >/dev/null)
for tgz in "$scratch"/*.tgz; do
  mkdir -p "${tgz%.tgz}"
  tar -xzf "$tgz" -C "${tgz%.tgz}"
done
nsfwjs=$scratch/nsfwjs-$NSFWJS/package
tfjs=$scratch/tensorflow-tfjs-$TFJS/package
wasm=$scratch/tensorflow-tfjs-backend-wasm-$TFJS/package

rm -rf "$vendor/tfjs" "$vendor/nsfwjs"
mkdir -p "$vendor/tfjs" "$vendor/nsfwjs/mobilenet_v2_mid"
cp "$tfjs/dist/tf.min.js" "$wasm/dist/tf-backend-wasm.min.js" \
  "$wasm/wasm-out/tfjs-backend-wasm.wasm" "$wasm/wasm-out/tfjs-backend-wasm-simd.wasm" \
  "$vendor/tfjs/"
# The tfjs packages carry no license file; they are Apache-2.0 (package.json, file headers).
cp /usr/share/common-licenses/Apache-2.0 "$vendor/tfjs/LICENSE"
cp "$nsfwjs/LICENSE" "$vendor/nsfwjs/LICENSE"
cp "$nsfwjs"/dist/models/mobilenet_v2_mid/*.min.js "$vendor/nsfwjs/mobilenet_v2_mid/"
chmod 644 "$vendor"/tfjs/* "$vendor"/nsfwjs/LICENSE "$vendor"/nsfwjs/mobilenet_v2_mid/*

if [ "${1:-}" = --update ]; then
  (cd "$vendor" && find . -type f ! -name SHA256SUMS ! -name README.md | sed 's|^\./||' | sort |
    xargs sha256sum >SHA256SUMS)
  echo "rewrote $sums"
fi
verify
