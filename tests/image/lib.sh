# Shared helpers for tests/image/*.sh (sourced). Tests exit 0 pass, 1 fail, 77 skip.
set -euo pipefail
export LC_ALL=C
SRC=${TORGW_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=../support/skip.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/skip.sh"
pass() { echo "ok: $*"; }
# manifest FILE EXPR: a Python expression over m (the parsed manifest.json)
manifest() { python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print($2)" "$1"; }
require_fixture() {
  [ -f "$1/manifest.json" ] || skip fixture "no image fixture in $1 (image_fixture_build failed or was skipped)"
}
