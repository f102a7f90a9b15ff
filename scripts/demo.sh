#!/usr/bin/env bash
# `make demo`: index sample photos into ./demo-home and search them, using the CLI a user would.
# Uses ../shared/faces when it is beside the checkout; otherwise draws sample photos from
# scikit-image's astronaut() and camera() (shipped inside that package).
set -euo pipefail
cd "$(dirname "$0")/.."
FI=".venv/bin/faceindex"
export FACEINDEX_HOME="$PWD/demo-home"
rm -rf demo-home
mkdir -p demo-home/photos
shared=../shared/faces
if [ -d "$shared/face-recognition-knn" ]; then
  cp -r "$shared/face-recognition-knn/." demo-home/photos/
  rm -f demo-home/photos/SOURCE.txt
  probe="$shared/multi-face/facerec_obama_and_biden.jpg"
else
  .venv/bin/python scripts/sample_photos.py demo-home/photos demo-home/probe.jpg
  probe=demo-home/probe.jpg
fi
set -x
$FI init
$FI sources add archive --path demo-home/photos --owner "Photo desk" \
    --legal-basis contract --retention-days 3650
$FI ingest archive
$FI search "$probe" --case DEMO-001 --purpose "identify speaker" --top 3 || [ $? -eq 1 ]
$FI stats
$FI audit verify
