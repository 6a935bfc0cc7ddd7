# Helpers for scripts/run-demo (sourced, not run): printing, timing, daemon log extracts, and
# the checks on processes. The one idea: every step is a command run through `timed`, which
# records its latency and its output, and stops the demo with a clear message if it fails.
# Expects: $WORK (the demo's temp dir), $DAEMON_LOG, $BIN (the programs).

if [ -t 1 ]; then
  B=$'\e[1m'; G=$'\e[32m'; R=$'\e[31m'; D=$'\e[2m'; N=$'\e[0m'
else
  B=''; G=''; R=''; D=''; N=''
fi

STEP=0
STEP_NAME=""

# Microseconds since the epoch, without forking (bash 5 EPOCHREALTIME).
now_us() {
  local t=${EPOCHREALTIME/[.,]/}
  echo "$t"
}

# "1234567" microseconds -> "1234.6"
fmt_ms() {
  local us=$1
  printf '%d.%d' $((us / 1000)) $(((us % 1000) / 100))
}

fail() {
  trap - ERR
  echo
  echo "${R}${B}DEMO FAILED${N}${R} at step $STEP ($STEP_NAME): $*${N}" >&2
  if [ -n "${DAEMON_LOG:-}" ] && [ -s "$DAEMON_LOG" ]; then
    echo "last daemon log lines:" >&2
    tail -n 15 "$DAEMON_LOG" | compact_log >&2
  fi
  exit 1
}

# ERR trap: a command that was not expected to fail.
on_error() {
  fail "line $1 of run-demo: command failed: $BASH_COMMAND"
}

# step "Title" "what it does (one or two lines)"
step() {
  STEP=$((STEP + 1))
  STEP_NAME=$1
  echo
  echo "${B}[$STEP] $1${N}"
  shift
  local line
  for line in "$@"; do
    echo "    $line"
  done
}

# timed CMD ARGS...: runs the command, sets OUT (stdout+stderr) and US (wall time in µs).
# A failure stops the demo with the command's output.
timed() {
  local t0 t1 rc=0
  t0=$(now_us)
  OUT=$("$@" 2>&1) || rc=$?
  t1=$(now_us)
  US=$((t1 - t0))
  if [ $rc -ne 0 ]; then
    fail "$(basename "$1") exited $rc: $OUT"
  fi
}

# result "what" : prints the latency line of the last `timed` command.
result() {
  printf '    %s-> %-44s %s%8s ms%s\n' "$G" "$1" "$B" "$(fmt_ms "$US")" "$N"
}

# Output lines of the last command, indented.
show_out() {
  sed 's/^/       /' <<<"$OUT"
}

# logfmt lines -> "hh:mm:ss.mmm comp: msg k=v ...", temp dir shown as $T.
compact_log() {
  sed -E -e 's/^time=[0-9-]+T([0-9:.]+)Z level=([a-z]+) comp=([a-z-]+) msg="([^"]*)"/\1 \3 [\2] \4 /' \
         -e 's/ \[info\]//' -e "s#${WORK:-/nonexistent}#\$T#g" -e 's/ +$//' -e 's/^(.{190}).+/\1 …/'
}

# Log lines after line $1 of file $2 whose msg matches the regex $3, compacted and indented.
log_since() {
  local from=$1 file=$2 re=$3
  tail -n +"$((from + 1))" "$file" | { grep -E "msg=\"($re)\"" || true; } | compact_log | sed "s/^/     ${D}| /;s/\$/${N}/"
}

log_lines() {  # number of lines in a file (0 if absent)
  if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

# Waits until file $1 has a line matching $2 after line $3, for up to $4 seconds.
wait_log() {
  local file=$1 re=$2 from=$3 secs=$4 i
  for ((i = 0; i < secs * 20; i++)); do
    if tail -n +"$((from + 1))" "$file" 2>/dev/null | grep -E "$re" >/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

# Whether pid $1 is a live (not zombie) process whose command line mentions $WORK.
pid_is_ours() {
  local pid=$1 state
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || return 1
  [ "$state" != "Z" ] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$WORK"
}

# Waits up to $2 seconds for pid $1 to be gone (or a zombie).
wait_gone() {
  local pid=$1 secs=$2 i
  for ((i = 0; i < secs * 20; i++)); do
    pid_is_ours "$pid" || return 0
    sleep 0.05
  done
  return 1
}
