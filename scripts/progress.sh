# Sourced by the scripts: long steps print a line when they start and every 20 s while they run,
# with their output kept in one log file; a failed step prints the log's tail and where it is.
#   step "building Linux x86_64" cargo build ...
: "${KAFKA1C_LOG:=${TMPDIR:-/tmp}/kafka1c-build.log}"
: "${KAFKA1C_WHO:=$(basename "$0" .sh)}"
export KAFKA1C_LOG KAFKA1C_WHO

say() { echo "$KAFKA1C_WHO: $*" >&2; }

step() {
  local what=$1 start=$SECONDS pid status
  shift
  say "$what ..."
  echo "=== $what: $*" >>"$KAFKA1C_LOG"
  "$@" >>"$KAFKA1C_LOG" 2>&1 </dev/null &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (((SECONDS - start) % 20 == 0)) && kill -0 "$pid" 2>/dev/null; then
      say "  still $what ($((SECONDS - start)) s)"
    fi
  done
  status=0
  wait "$pid" || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$KAFKA1C_LOG" >&2
    say "FAILED: $what (exit $status); full log: $KAFKA1C_LOG"
    exit "$status"
  fi
  say "  done in $((SECONDS - start)) s"
}
