#!/usr/bin/env bash
# Step "restore": keel:restore as code. With a target (`latest`, an RFC 3339 time, or `undo`) it
# runs once per value: the API instances stop, the cluster is moved aside on the volume, the
# backup repository restores the database to that point (or, for `undo`, the cluster the last
# restore replaced comes back), PostgreSQL starts and is checked, and the API comes back. It
# prints what was restored. Without a target it does nothing. The API's login roles of the
# cluster in place are carried over: a restored cluster may predate a password rotation, and
# the instances keep the credentials they have; the restored cluster's other login roles (of
# passwords retired since) are dropped, so a restore never brings an old password back.
# Usage: restore.sh WORK --target none|latest|undo|YYYY-MM-DDTHH:MM:SSZ
set -Eeuo pipefail

# shellcheck source=lib.sh
source "$1/lib.sh"

readonly PG_UNIT=postgresql@17-main.service

applied_file() {
  printf '%s/restore-applied.json' "${STATE_DIR}"
}

epoch_of() {
  date -u -d "$1" +%s 2>/dev/null || die "keel:restore \"$1\" is not a time: use latest, undo or an RFC 3339 time such as 2026-12-02T14:05:00Z"
}

# check_target TARGET INFO: refuses a time before the oldest backup or after the newest
# archived WAL; INFO is the repository's `pgbackrest info` JSON.
check_target() {
  local target="$1" info="$2" oldest newest when
  [[ "$(jq '.[0].backup | length' <<<"${info}")" != 0 ]] || die "there is no backup to restore"
  [[ "${target}" == latest ]] && return 0
  when="$(epoch_of "${target}")"
  oldest="$(jq '.[0].backup[0].timestamp.stop' <<<"${info}")"
  ((when >= oldest)) ||
    die "keel:restore ${target} is before the oldest backup, which ended at $(date -u -d "@${oldest}" +%FT%TZ)"
  newest="$(as_postgres psql -X -tA -c "SELECT coalesce(extract(epoch FROM last_archived_time)::bigint, 0) FROM pg_stat_archiver" 2>/dev/null || printf 0)"
  ((newest == 0 || when <= newest)) ||
    die "keel:restore ${target} is after the newest archived WAL ($(date -u -d "@${newest}" +%FT%TZ)): nothing that late can be restored"
}

# The API instances that run now; they are stopped for the restore and started again after.
running_instances() {
  systemctl list-units --plain --no-legend --state=active 'keel-api@*.service' | awk '{print $1}'
}

stop_database() {
  local units=("$@")
  if ((${#units[@]} > 0)); then systemctl stop "${units[@]}"; fi
  systemctl stop "${PG_UNIT}"
}

start_database() {
  systemctl start "${PG_UNIT}"
  wait_for 600 "PostgreSQL accepts connections" as_postgres pg_isready -q -p 5432 || return 1
  local tries=0
  until [[ "$(as_postgres psql -X -tA -c 'SELECT pg_is_in_recovery()')" == f ]]; do
    ((tries++ < 1200)) || return 1
    sleep 0.5
  done
}

start_api() {
  local unit
  for unit in "$@"; do
    systemctl start "${unit}"
  done
  for unit in "$@"; do
    local n="${unit#keel-api@}"
    n="${n%.service}"
    wait_for 60 "${unit} is ready" curl -fs --max-time 2 -o /dev/null "http://127.0.0.1:300${n}/ready" ||
      info "warning: ${unit} is not ready yet"
  done
}

# save_login_roles FILE: the API's login roles (name and SCRAM verifier) of the running cluster.
save_login_roles() {
  as_postgres psql -X -tA -F ' ' -c "SELECT rolname, rolpassword FROM pg_authid WHERE rolname ~ '^keel_[0-9a-f]{12}\$'" >"$1"
}

# carry_login_roles FILE: gives the cluster exactly the saved login roles: creates those it
# lacks, as the postgres step does, and drops the others. A cluster restored from before a
# rotation holds the login role of the old password, which the api step had dropped since.
carry_login_roles() {
  local role verifier
  local -A saved=()
  while read -r role verifier; do
    [[ -n "${role}" ]] || continue
    saved["${role}"]=1
    [[ "${role}" =~ ^keel_[0-9a-f]{12}$ && "${verifier}" =~ ^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$ ]] || continue
    [[ -z "$(as_postgres psql -X -tA -c "SELECT 1 FROM pg_roles WHERE rolname = '${role}'")" ]] || continue
    as_postgres psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION IN ROLE keel PASSWORD '${verifier}';
ALTER ROLE ${role} SET role = 'keel';
SQL
    info "login role ${role} carried over into the restored cluster"
  done <"$1"
  # Never leave the API without a login role: drop others only when one was saved.
  ((${#saved[@]} > 0)) || return 0
  while IFS= read -r role; do
    [[ -n "${role}" && -z "${saved[${role}]:-}" ]] || continue
    as_postgres psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<<"DROP ROLE ${role};"
    info "dropped login role ${role}, of a password retired since that backup"
  done < <(as_postgres psql -X -tA -c "SELECT rolname FROM pg_roles WHERE rolname ~ '^keel_[0-9a-f]{12}\$'")
}

row_counts() {
  local table out=()
  for table in "${KEY_TABLES[@]}"; do
    out+=("${table}=$(as_postgres psql -X -tA -d "${DATABASE}" -c "SELECT count(*) FROM public.${table}")")
  done
  printf '%s' "${out[*]}"
}

# make_room NEEDED: removes older replaced clusters while the volume is short of space.
make_room() {
  local needed="$1" dir
  while (($(df --output=avail -B1 /srv/keel | tail -n 1) < needed)); do
    dir="$(find "${REPLACED_DIR}" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' 2>/dev/null | sort -n | head -n 1 | cut -d' ' -f2)"
    [[ -n "${dir}" ]] || die "the volume has too little space to restore (${needed} bytes needed)"
    printf 'keel restore: warning: removing the replaced cluster %s to make room (low disk space)\n' "${dir}" >&2
    rm -rf "${dir}"
  done
}

# put_back KEPT: the cluster in KEPT becomes the data directory again (after a failure or undo).
put_back() {
  local kept="$1"
  rm -rf "${PG_DATA}"
  mv "${kept}" "${PG_DATA}"
}

# last_timeline ARCHIVE_ID: on a new server (the old one lost), the timeline the old server was
# on: the one of the WAL segment archived last.
last_timeline() {
  local newest
  newest="$(pgbackrest_run --output=json repo-ls --recurse "archive/${STANZA}/$1" |
    jq -r '[to_entries[] | select(.value.type == "file" and (.key | test("/[0-9A-F]{24}-")))]
      | sort_by(.value.time, .key) | last | .key // empty')" ||
    die "the backup repository's WAL archive cannot be listed"
  [[ -n "${newest}" ]] || die "the backup repository holds no archived WAL to restore from"
  printf '%d\n' "$((16#${newest:0:8}))"
}

restore_to() {
  local target="$1" instances=() aside label needed info
  info="$(pgbackrest_run --output=json info)" || die "the backup repository cannot be reached"
  check_target "${target}" "${info}"
  mapfile -t instances < <(running_instances)
  needed="$(jq '.[0].backup[-1].info.size * 1.2 | floor' <<<"${info}")"
  make_room "${needed}"
  ROLES_FILE="$(mktemp)"
  save_login_roles "${ROLES_FILE}"
  # The history to restore from: the running cluster's timeline. After an earlier restore and an
  # undo, the newest timeline in the repository is an abandoned one, not the one in use.
  local timeline
  if [[ "$(as_postgres psql -X -tA -c "SELECT system_identifier FROM pg_control_system()")" == \
    "$(jq -r '.[0].db[-1]["system-id"]' <<<"${info}")" ]]; then
    timeline="$(as_postgres psql -X -tA -c "SELECT timeline_id FROM pg_control_checkpoint()")"
  else
    timeline="$(last_timeline "$(jq -r '.[0].archive[-1].id' <<<"${info}")")"
  fi
  stop_database "${instances[@]}"
  aside="${REPLACED_DIR}/$(date -u +%Y%m%dT%H%M%SZ)"
  install -d -m 0700 -o postgres -g postgres "${REPLACED_DIR}"
  mv "${PG_DATA}" "${aside}"
  install -d -m 0700 -o postgres -g postgres "${PG_DATA}"
  local options=()
  if [[ "${target}" != latest ]]; then
    options+=(--type=time "--target=$(date -u -d "@$(epoch_of "${target}")" '+%F %T+00')" --target-action=promote)
  fi
  options+=("--target-timeline=${timeline}")
  local output
  if ! output="$(pgbackrest_run "${options[@]}" --log-level-console=info restore 2>&1)" || ! start_database; then
    systemctl stop "${PG_UNIT}" || true
    put_back "${aside}"
    start_database || true
    start_api "${instances[@]}"
    die "restoring to ${target} failed; the cluster in place before is back: $(tail -n 3 <<<"${output}" | tr '\n' ' ') $(journalctl -u "${PG_UNIT}" -n 3 --no-pager -o cat | tr '\n' ' ')"
  fi
  label="$(grep -o 'restore backup set [^ ,]*' <<<"${output}" | awk '{print $4}' | head -n 1)"
  carry_login_roles "${ROLES_FILE}"
  start_api "${instances[@]}"
  # The restored cluster archives into the repository from here on, on a new timeline.
  pgbackrest_run check >/dev/null 2>&1 || info "warning: pgbackrest check failed after the restore; see keel-backup-status"
  info "restored to ${target} from backup ${label:-?}; the replaced cluster is kept in ${aside}"
  info "row counts: $(row_counts)"
  note_change "restored the database to ${target}"
  RESTORE_DETAIL="$(jq -n --arg label "${label}" --arg replaced "${aside}" '{label: $label, replaced: $replaced}')"
}

undo_restore() {
  local kept instances=() aside
  kept="$(find "${REPLACED_DIR}" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' 2>/dev/null | sort -rn | head -n 1 | cut -d' ' -f2)"
  [[ -n "${kept}" ]] || die "keel:restore undo: no replaced cluster is kept on the volume (a full backup since the restore removed it)"
  mapfile -t instances < <(running_instances)
  ROLES_FILE="$(mktemp)"
  save_login_roles "${ROLES_FILE}"
  stop_database "${instances[@]}"
  aside="${REPLACED_DIR}/$(date -u +%Y%m%dT%H%M%SZ)-undone"
  mv "${PG_DATA}" "${aside}"
  mv "${kept}" "${PG_DATA}"
  start_database || die "the kept cluster did not start; it is in ${PG_DATA}, the undone one in ${aside}"
  carry_login_roles "${ROLES_FILE}"
  start_api "${instances[@]}"
  info "undid the last restore: the cluster from ${kept##*/} is back; the undone one is kept in ${aside}"
  info "row counts: $(row_counts)"
  note_change "put back the cluster the last restore replaced"
  RESTORE_DETAIL="$(jq -n --arg replaced "${aside}" '{replaced: $replaced}')"
}

main() {
  keel_start restore "$1"
  ROLES_FILE=""
  trap '[[ -z "${ROLES_FILE}" ]] || rm -f "${ROLES_FILE}"' EXIT
  shift
  local target=""
  while (($# > 0)); do
    case "$1" in
      --target) target="$2" ;;
      *) die "unknown argument $1" ;;
    esac
    shift 2
  done
  [[ -n "${target}" ]] || die "usage: restore.sh WORK --target none|latest|undo|TIME"
  # The layout (paths, stanza) as Keel's TypeScript renders it.
  # shellcheck source=/dev/null
  source "${KEEL_WORK}/inputs/layout"
  if [[ "${target}" == none ]]; then
    if [[ -f "$(applied_file)" ]]; then
      rm -f "$(applied_file)"
      info "keel:restore is unset; the next value set will run once"
    fi
    keel_finish
    return 0
  fi
  if [[ -f "$(applied_file)" && "$(jq -r .target "$(applied_file)")" == "${target}" ]]; then
    info "keel:restore ${target} was applied at $(jq -r .at "$(applied_file)"); nothing to do"
    keel_finish
    return 0
  fi
  RESTORE_DETAIL='{}'
  if [[ "${target}" == undo ]]; then
    undo_restore
  else
    restore_to "${target}"
  fi
  jq -n --arg target "${target}" --arg at "$(date -u +%FT%TZ)" --argjson detail "${RESTORE_DETAIL}" \
    '{target: $target, at: $at} + $detail' >"$(applied_file)"
  keel_finish
}

main "$@"
