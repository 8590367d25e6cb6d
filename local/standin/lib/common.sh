# shellcheck shell=bash
# Shared helpers of the stand-in harness: logging, events for the driver, stage failures that
# show the last lines of the relevant logs, and waiting with a deadline.

STAGE="start"
STAGE_LOGS=()
EVENTS_FD=1
# Progress goes to a copy of the original stderr, so that a trap that fires while a command's
# output is redirected to its own log still reports where the reader sees it.
LOG_FD=2
STANDIN_FAILED=""

log() {
  printf '[standin %(%H:%M:%S)T] %s\n' -1 "$*" >&"${LOG_FD}" || true
}

# Events are single JSON lines on the events channel (the harness's original stdout); the
# TypeScript driver reads them. Writing never fails the harness, even when nobody listens.
emit() {
  printf '%s\n' "$1" >&"${EVENTS_FD}" || true
}

json_string() {
  local value="$1"
  value="${value//\\/\\\\}"
  value="${value//\"/\\\"}"
  printf '"%s"' "${value}"
}

json_string_array() {
  local first=1
  local item
  printf '['
  for item in "$@"; do
    if [[ "${first}" -eq 0 ]]; then
      printf ','
    fi
    json_string "${item}"
    first=0
  done
  printf ']'
}

# stage NAME [LOG...]: names what the harness does now and which logs explain a failure of it.
stage() {
  STAGE="$1"
  shift
  STAGE_LOGS=("$@")
  log "${STAGE}"
}

show_log_tail() {
  local file="$1"
  if [[ -s "${file}" ]]; then
    log "last lines of ${file}:"
    tail -n 25 "${file}" | sed 's/^/    /' >&"${LOG_FD}" || true
  fi
}

# fail MESSAGE: reports which stage failed, with the last lines of its logs, then exits.
fail() {
  local message="$1"
  local file
  log "FAILED during '${STAGE}': ${message}"
  for file in "${STAGE_LOGS[@]}"; do
    show_log_tail "${file}"
  done
  STANDIN_FAILED=1
  emit "{\"event\":\"failed\",\"stage\":$(json_string "${STAGE}"),\"message\":$(json_string "${message}")}"
  exit 1
}

has_failed() {
  [[ -n "${STANDIN_FAILED}" ]]
}

on_error() {
  local status="$1"
  local line="$2"
  local command="$3"
  if [[ "${BASHPID}" -ne "$$" ]]; then
    exit "${status}"
  fi
  fail "'${command}' exited with status ${status} (line ${line} of ${BASH_SOURCE[1]:-standin.sh})"
}

# interruptible COMMAND...: runs COMMAND in the background and waits for it, so that a signal
# to the harness is handled at once instead of after COMMAND ends. COMMAND's stdin is /dev/null.
interruptible() {
  "$@" &
  wait "$!"
}

# wait_until SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds or time runs out.
wait_until() {
  local seconds="$1"
  shift
  local deadline=$((EPOCHSECONDS + seconds))
  until "$@"; do
    if ((EPOCHSECONDS >= deadline)); then
      return 1
    fi
    sleep 0.1
  done
}

# pid_matches PID TEXT: the process is alive and its command line contains TEXT, so a recorded
# PID that the kernel has since reused for something else is never signalled.
pid_matches() {
  local pid="$1"
  local text="$2"
  local cmdline
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/${pid}/cmdline")" || return 1
  [[ "${cmdline}" == *"${text}"* ]]
}

# kill_processes_mentioning TEXT: SIGKILL to every process (but this shell) whose command line
# contains TEXT, a path only this run uses.
kill_processes_mentioning() {
  local text="$1"
  local pids=()
  local cmdline_file
  local pid
  for cmdline_file in /proc/[0-9]*/cmdline; do
    pid="${cmdline_file#/proc/}"
    pid="${pid%/cmdline}"
    if [[ "${pid}" -ne "$$" ]] && pid_matches "${pid}" "${text}"; then
      pids+=("${pid}")
    fi
  done
  if ((${#pids[@]} > 0)); then
    log "killing leftover processes that use ${text}: ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.2
  fi
}

# stop_pid PIDFILE TEXT SECONDS: SIGTERM, then SIGKILL if it has not ended in time.
stop_pid() {
  local pid_file="$1"
  local text="$2"
  local seconds="$3"
  local pid
  [[ -f "${pid_file}" ]] || return 0
  pid="$(<"${pid_file}")"
  if pid_matches "${pid}" "${text}"; then
    kill -TERM "${pid}" 2>/dev/null || true
    if ! wait_until "${seconds}" not_alive "${pid}"; then
      log "pid ${pid} ignored SIGTERM for ${seconds}s; killing it"
      kill -KILL "${pid}" 2>/dev/null || true
      wait_until 5 not_alive "${pid}" || log "pid ${pid} survived SIGKILL"
    fi
  fi
  rm -f "${pid_file}"
}

not_alive() {
  local pid="$1"
  [[ ! -e "/proc/${pid}" ]] || [[ "$(awk '{print $3}' "/proc/${pid}/stat" 2>/dev/null)" == "Z" ]]
}

# elapsed_since EPOCHREALTIME_VALUE: seconds since then, with one decimal.
elapsed_since() {
  local start="${1/./}"
  local now="${EPOCHREALTIME/./}"
  local tenths=$(((now - start) / 100000))
  printf '%d.%d' $((tenths / 10)) $((tenths % 10))
}

random_port() {
  printf '%d' $((20000 + SRANDOM % 12000))
}

port_is_free() {
  local port="$1"
  [[ -z "$(ss -Hltn "sport = :${port}" 2>/dev/null)" ]]
}

# unmount_under PATH: unmounts PATH and everything mounted below it, deepest first.
unmount_under() {
  local path="$1"
  local mount_point
  while read -r mount_point; do
    umount "${mount_point}" 2>/dev/null || umount -l "${mount_point}" || log "could not unmount ${mount_point}"
  done < <(awk -v p="${path}" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}
