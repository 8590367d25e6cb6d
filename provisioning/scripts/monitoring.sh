#!/usr/bin/env bash
# Step "monitoring": Prometheus, Alertmanager and Debian's node, PostgreSQL, Redis and nginx
# exporters, every one on loopback, sandboxed and memory-capped; Keel's alert rules; alert mail
# when keel:smtp is set; the served certificate's expiry as metrics. Configuration changes
# reload Prometheus and Alertmanager; changed arguments or sandboxes restart only their unit.
# Usage: monitoring.sh WORK --data-dir PATH
#   --data-dir: where Prometheus keeps its metrics (on the data volume)
set -Eeuo pipefail

# shellcheck source=lib.sh
source "$1/lib.sh"

readonly UNITS=(prometheus.service prometheus-alertmanager.service
  prometheus-node-exporter.service prometheus-postgres-exporter.service
  prometheus-redis-exporter.service prometheus-nginx-exporter.service)
readonly PROMETHEUS_CONFIG=/etc/prometheus/prometheus.yml
readonly ALERT_RULES=/etc/prometheus/keel-rules.yml
readonly ALERTMANAGER_CONFIG=/etc/prometheus/alertmanager.yml
readonly SMTP_PASSWORD_FILE=/etc/prometheus/alertmanager-smtp-password
readonly REDIS_PASSWORD_FILE=/etc/prometheus/redis-exporter-password.json
readonly EXPORTER_ROLE=prometheus
readonly TLS_UNITS=(keel-tls-metrics.socket keel-tls-metrics@.service)

# What each running unit needs for the files installed so far: none, reload or restart.
declare -A NEEDS=()

# needs UNIT ACTION: raises what UNIT needs to ACTION (restart beats reload beats none).
needs() {
  case "${NEEDS[$1]:-none}:$2" in
    restart:* | *:none) ;;
    *) NEEDS[$1]="$2" ;;
  esac
}

# The packages start their units as they install, so the arguments (loopback addresses) and the
# sandboxes are in place first: nothing listens beyond loopback, not even for a moment.
install_unit_settings() {
  local unit changed=0
  for unit in "${UNITS[@]}"; do
    install_rendered "/etc/default/${unit%.service}" 0644 root root
    if last_changed; then needs "${unit}" restart; fi
    install_rendered "/etc/systemd/system/${unit}.d/50-keel-hardening.conf" 0644 root root
    if last_changed; then
      needs "${unit}" restart
      changed=1
    fi
  done
  if ((changed == 1)); then daemon_reload; fi
}

install_packages() {
  local unit packages=()
  for unit in "${UNITS[@]}"; do packages+=("${unit%.service}"); done
  ensure_packages "${packages[@]}"
}

# The exporter logs in by peer authentication (pg_hba.conf, postgres step) with pg_monitor's rights.
ensure_exporter_role() {
  local exists
  exists="$(as_postgres psql -X -tA -c "SELECT 1 FROM pg_roles WHERE rolname = '${EXPORTER_ROLE}'")"
  [[ "${exists}" == 1 ]] && return 0
  as_postgres psql -X -q -v ON_ERROR_STOP=1 -c "CREATE ROLE ${EXPORTER_ROLE} LOGIN IN ROLE pg_monitor"
  note_change "PostgreSQL role ${EXPORTER_ROLE} (pg_monitor)"
}

install_configuration() {
  install_validated "${ALERT_RULES}" 0644 root root promtool check rules --lint=none "${ALERT_RULES}"
  if last_changed; then needs prometheus.service reload; fi
  install_validated "${PROMETHEUS_CONFIG}" 0644 root root promtool check config --lint=none "${PROMETHEUS_CONFIG}"
  if last_changed; then needs prometheus.service reload; fi

  # The password file first: a configuration that names it is checked with it in place.
  if [[ -f "$(rendered "${SMTP_PASSWORD_FILE}")" ]]; then
    install_rendered "${SMTP_PASSWORD_FILE}" 0640 root prometheus
  else
    remove_file "${SMTP_PASSWORD_FILE}"
  fi
  if last_changed; then needs prometheus-alertmanager.service reload; fi
  install_validated "${ALERTMANAGER_CONFIG}" 0644 root root amtool check-config "${ALERTMANAGER_CONFIG}"
  if last_changed; then needs prometheus-alertmanager.service reload; fi

  # The exporter reads its password only at start.
  install_rendered "${REDIS_PASSWORD_FILE}" 0640 root prometheus
  if last_changed; then needs prometheus-redis-exporter.service restart; fi
}

install_tls_metrics() {
  local unit changed=0
  install_rendered /usr/local/sbin/keel-tls-metrics 0755 root root
  for unit in "${TLS_UNITS[@]}"; do
    install_rendered "/etc/systemd/system/${unit}" 0644 root root
    if last_changed; then changed=1; fi
  done
  local action=none
  if ((changed == 1)); then
    daemon_reload
    action=restart
  fi
  apply_service keel-tls-metrics.socket "${action}"
}

prometheus_ready() {
  curl -fs --max-time 2 http://127.0.0.1:9090/-/ready
}

alertmanager_ready() {
  curl -fs --max-time 2 http://127.0.0.1:9093/-/ready
}

main() {
  keel_start monitoring "$1"
  shift
  local data_dir=""
  while (($# > 0)); do
    case "$1" in
      --data-dir) data_dir="$2" ;;
      *) die "unknown argument $1" ;;
    esac
    shift 2
  done
  [[ -n "${data_dir}" ]] || die "usage: monitoring.sh WORK --data-dir PATH"

  install_unit_settings
  install_packages
  # A package's maintainer script may rewrite its /etc/default file (the PostgreSQL exporter's
  # does): Keel's goes back, and the unit restarts on it.
  install_unit_settings
  ensure_dir "${data_dir}" 0750 prometheus prometheus
  ensure_exporter_role
  install_configuration
  install_tls_metrics

  local unit
  for unit in "${UNITS[@]}"; do
    # A unit its package started before its files were here may have failed up to its start
    # limit (the Redis exporter without its password file); that would refuse the start.
    if systemctl is-failed --quiet "${unit}"; then systemctl reset-failed "${unit}"; fi
    apply_service "${unit}" "${NEEDS[${unit}]:-none}"
  done
  wait_for 60 "Prometheus is ready on 127.0.0.1:9090" prometheus_ready ||
    die "Prometheus was not ready within 60 s; see journalctl -u prometheus"
  wait_for 30 "Alertmanager is ready on 127.0.0.1:9093" alertmanager_ready ||
    die "Alertmanager was not ready within 30 s; see journalctl -u prometheus-alertmanager"
  keel_finish
}

main "$@"
