#!/usr/bin/env bash
# Builds the Free Pascal server of the batched design: servers/pascal/bin/wami-pascal, and its unit
# test program servers/pascal/bin/wami-pascal-tests. Needs Free Pascal 3.2 (RTL + FCL: Debian
# fp-compiler fp-units-base fp-units-fcl fp-units-db) and the system libsqlite3 (libsqlite3-dev).
# Where fpc is missing it says so in one line and exits 0 (skipped): everything else in the
# project works without it, and the Pascal tests skip with the same reason.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
if ! command -v fpc >/dev/null 2>&1; then
  echo "build:pascal: skipped: fpc (Free Pascal) is not installed (Debian: apt-get install fp-compiler fp-units-base fp-units-fcl fp-units-db libsqlite3-dev)"
  exit 0
fi
mkdir -p bin/obj bin/obj-tests
log="bin/build.log"
: >"$log"
# -O2 optimised, -Xs strip, -XX smart-link; units and objects under bin/ (ignored by git)
build() {
  local src="$1" out="$2" units="$3"
  if ! fpc -Mobjfpc -O2 -Xs -XX -vewn -Fusrc -FU"$units" -FEbin -o"$out" "$src" >>"$log" 2>&1; then
    grep -E 'Error|Fatal|cannot find|undefined reference' "$log" | head -20 >&2 || true
    if grep -q 'cannot find -lsqlite3' "$log"; then
      echo "build:pascal: failed: the linker cannot find libsqlite3 (Debian: apt-get install libsqlite3-dev); full log: servers/pascal/$log" >&2
    else
      echo "build:pascal: failed to compile $src; full log: servers/pascal/$log" >&2
    fi
    exit 1
  fi
}
build src/wamipascal.lpr bin/wami-pascal bin/obj
build tests/unittests.lpr bin/wami-pascal-tests bin/obj-tests
echo "build:pascal: built servers/pascal/bin/wami-pascal and bin/wami-pascal-tests with fpc $(fpc -iV)"
