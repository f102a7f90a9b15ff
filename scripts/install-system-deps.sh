#!/usr/bin/env bash
# System packages faceindex's build and tests use, from Debian's archive:
#   libopenblas-dev, cmake  - only for `make DLIB=source` (dlib compiled against OpenBLAS)
#   postgresql              - the PostgreSQL catalog's tests (scripts/start-postgres.sh)
#   chromium                - the web page's end-to-end tests (playwright drives it)
# Installs only what is missing; needs root (or passwordless sudo) and apt-get, else it says
# what to install and carries on (tests that need a missing piece skip with a reason).
set -u
want=(postgresql chromium)
[ "${DLIB:-bin}" = "source" ] && want+=(libopenblas-dev cmake)
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
if ! command -v apt-get >/dev/null || { [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; }; then
  echo "install-system-deps: please install: ${missing[*]}" >&2
  exit 0
fi
echo "install-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  || echo "install-system-deps: apt-get failed for ${missing[*]}" >&2
exit 0
