#!/usr/bin/env bash
# The cluster fault cases of tests/cluster.rs (3 Apache Kafka 4.4.0 nodes, replication factor 3,
# min.insync.replicas=2) in their long variant - ten times the records - and their figures
# written into RELIABILITY.md between its "figures" markers. About 10 minutes on 2 cores.
# The README's test command runs the same cases in their short variant.
#   scripts/reliability.sh          long variant
#   KAFKA1C_LONG=0 scripts/reliability.sh   short variant (what CI runs), figures refreshed too
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh test
out=$(mktemp)
trap 'rm -f "$out"' EXIT
KAFKA1C_LONG=${KAFKA1C_LONG:-1} KAFKA1C_RELIABILITY_OUT=$out \
  cargo test --release --test cluster -- --test-threads 1
python3 - "$out" RELIABILITY.md "${KAFKA1C_LONG:-1}" <<'PY'
import json, sys, datetime
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def cell(v):
    if v is None: return "-"
    if isinstance(v, float): return f"{v:.1f}"
    if isinstance(v, list): return " / ".join(cell(x) for x in v)
    return str(v).replace("|", "\\|")
keys = [("records", "records"), ("acknowledged", "acknowledged / received"), ("received", None),
        ("lost", "lost / skipped"), ("skipped", None), ("duplicates", "duplicates / received again"),
        ("received_again", None), ("errors", "errors"), ("commit_or_poll_errors", None),
        ("recovery_s", "recovery, s")]
rows = ["| case | records | acknowledged / received | lost / skipped | duplicates / received again | errors | recovery, s | details |",
        "|---|---|---|---|---|---|---|---|"]
shown = {k for k, _ in keys} | {"scenario"}
for l in lines:
    get = lambda *ks: next((l[k] for k in ks if k in l), None)
    details = "; ".join(f"{k}: {cell(v)}" for k, v in l.items() if k not in shown)
    rows.append("| " + " | ".join([l["scenario"], cell(get("records")), cell(get("acknowledged", "received")),
                cell(get("lost", "skipped")), cell(get("duplicates", "received_again")),
                cell(get("errors", "commit_or_poll_errors")), cell(get("recovery_s")), details]) + " |")
variant = "long variant (`scripts/reliability.sh`)" if sys.argv[3] == "1" else "short variant (as in `scripts/test.sh`)"
table = f"Run of {datetime.date.today()}, {variant}:\n\n" + "\n".join(rows) + "\n"
doc = open(sys.argv[2]).read()
start, end = "<!-- figures -->\n", "<!-- /figures -->"
i, j = doc.index(start) + len(start), doc.index(end)
open(sys.argv[2], "w").write(doc[:i] + table + doc[j:])
PY
echo "reliability: figures written to RELIABILITY.md"
