#!/usr/bin/env bash
# Step "base": security updates, the keel group and user, the operators' account and its
# keel-ops program, SSH hardening, the host firewall, fail2ban, journald limits, host hardening,
# the data volume, swap and kernel settings.
# Usage: base.sh WORK --data-device DEVICE|"" --swap-mb N
set -Eeuo pipefail

# shellcheck source=lib.sh
source "$1/lib.sh"

readonly DATA_DIR=/srv/keel
readonly SWAP_FILE=/swapfile

upgrade_packages() {
  apt_update_once
  local pending
  pending="$(apt-get -s -o Debug::NoLocking=1 upgrade --with-new-pkgs | grep -c '^Inst ' || true)"
  ((pending > 0)) || return 0
  apt_get upgrade --with-new-pkgs >/dev/null
  note_change "upgraded ${pending} package(s)"
}

ensure_accounts() {
  if ! getent group keel >/dev/null; then
    groupadd --system keel
    note_change "group keel"
  fi
  if ! getent passwd keel-api >/dev/null; then
    useradd --system --gid keel --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --comment "Keel API" keel-api
    note_change "user keel-api"
  fi
}

# Operators (keel:operatorKeys) log in as keel-ops, which sshd lets run keel-ops and nothing
# else. The account reads the journal and /var/log (groups systemd-journal and adm), no secret.
configure_operators() {
  ensure_packages jq curl openssl
  if ! getent passwd keel-ops >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /var/lib/keel-ops \
      --shell /bin/sh --groups adm,systemd-journal --comment "Keel operators" keel-ops
    note_change "user keel-ops"
  fi
  ensure_dir /var/lib/keel-ops 0750 root keel-ops
  install_rendered /usr/local/sbin/keel-ops 0755 root root
  install_rendered /etc/default/keel-ops 0644 root root
  install_rendered /etc/ssh/keel-operator-keys 0644 root root
}

configure_sshd() {
  install_validated /etc/ssh/sshd_config.d/00-keel.conf 0644 root root sshd -t
  local config_changed=${KEEL_LAST_CHANGED}
  install_rendered /etc/systemd/system/ssh.service.d/50-keel-hardening.conf 0644 root root
  if last_changed; then
    daemon_reload
    # Restarts the listener only (KillMode=process): this session and every other one go on.
    systemctl restart ssh
    info "sshd restarted in its sandbox"
  elif ((config_changed == 1)); then
    systemctl reload ssh
    info "sshd reloaded"
  fi
}

configure_firewall() {
  install_validated /etc/nftables.conf 0755 root root nft -c -f /etc/nftables.conf
  if last_changed || ! nft list table inet keel >/dev/null 2>&1; then
    nft -f /etc/nftables.conf
    info "firewall rules loaded"
  fi
  ensure_enabled nftables.service
}

configure_fail2ban() {
  install_rendered /etc/fail2ban/jail.d/keel.local 0644 root root
  local changed=${KEEL_LAST_CHANGED}
  install_rendered /etc/systemd/system/fail2ban.service.d/50-keel-hardening.conf 0644 root root
  if last_changed; then
    daemon_reload
    changed=1
  fi
  ensure_enabled fail2ban.service
  if ((changed == 1)) && systemctl is-active --quiet fail2ban; then
    systemctl restart fail2ban
  fi
  ensure_started fail2ban.service
}

configure_journald() {
  install_rendered /etc/systemd/journald.conf.d/50-keel.conf 0644 root root
  if last_changed; then
    systemctl restart systemd-journald
  fi
}

configure_updates() {
  install_rendered /etc/apt/apt.conf.d/20auto-upgrades 0644 root root
  install_rendered /etc/apt/apt.conf.d/52keel-unattended-upgrades 0644 root root
  install_rendered /etc/systemd/system/apt-daily-upgrade.service.d/50-keel-hardening.conf 0644 root root
  if last_changed; then daemon_reload; fi
}

# What lynis asks of a host and costs no memory or availability: packages that audit and
# report, unused kernel modules off, banners, stricter defaults and permissions.
harden_host() {
  ensure_packages libpam-tmpdir needrestart debsums apt-show-versions sysstat
  install_rendered /etc/modprobe.d/keel-blacklist.conf 0644 root root
  install_rendered /etc/issue 0644 root root
  install_rendered /etc/issue.net 0644 root root
  install_rendered /etc/needrestart/conf.d/keel.conf 0644 root root
  local unit sandbox_changed=0
  for unit in sysstat.service sysstat-collect.service sysstat-summary.service sysstat-rotate.service; do
    install_rendered "/etc/systemd/system/${unit}.d/50-keel-hardening.conf" 0644 root root
    if last_changed; then sandbox_changed=1; fi
  done
  if ((sandbox_changed == 1)); then daemon_reload; fi
  install_rendered /etc/default/sysstat 0644 root root
  if last_changed || ((sandbox_changed == 1)); then
    systemctl restart sysstat.service
  fi
  schedule_debsums
  install_rendered /etc/security/limits.d/50-keel.conf 0644 root root
  install_rendered /etc/systemd/coredump.conf.d/50-keel.conf 0644 root root
  install_rendered /etc/profile.d/keel.sh 0644 root root
  ensure_login_default SHA_CRYPT_MIN_ROUNDS 100000
  ensure_login_default SHA_CRYPT_MAX_ROUNDS 500000
  # Files a login session creates are not readable by other users. Keel's steps set their own
  # umask (077) and every mode explicitly; services take systemd's.
  ensure_login_default UMASK 027
  ensure_mode /etc/ssh/sshd_config 0600
  ensure_mode /etc/sudoers.d 0750
  local cron
  for cron in /etc/cron.d /etc/cron.daily /etc/cron.weekly /etc/cron.monthly; do
    ensure_mode "${cron}" 0700
  done
}

# debsums weekly from Keel's timer: Debian's job needs cron, which a minimal Debian 13 lacks.
schedule_debsums() {
  install_rendered /etc/default/debsums 0644 root root
  install_rendered /etc/systemd/system/keel-debsums.service 0644 root root
  local changed=${KEEL_LAST_CHANGED}
  install_rendered /etc/systemd/system/keel-debsums.timer 0644 root root
  if last_changed || ((changed == 1)); then daemon_reload; fi
  apply_service keel-debsums.timer none
}

# ensure_login_default KEY VALUE: sets KEY in /etc/login.defs (which has no drop-in directory).
ensure_login_default() {
  local key="$1" value="$2"
  grep -Eq "^${key}[[:space:]]+${value}$" /etc/login.defs && return 0
  if grep -Eq "^${key}[[:space:]]" /etc/login.defs; then
    sed -i -E "s/^${key}[[:space:]].*/${key}\t\t${value}/" /etc/login.defs
  else
    printf '%s\t\t%s\n' "${key}" "${value}" >>/etc/login.defs
  fi
  note_change "${key} ${value} in /etc/login.defs"
}

# Intrusion detection: AIDE's baseline of the files no package checksum covers (taken again
# after each step and each apt run that changed them), chkrootkit daily, process accounting, and
# password quality should an operator ever give an account a console password.
detect_intrusions() {
  ensure_packages aide chkrootkit acct libpam-pwquality
  install_rendered /usr/local/sbin/keel-integrity 0755 root root
  install_rendered /etc/aide/aide.conf 0600 root root
  install_rendered /etc/keel/chkrootkit.ignore 0644 root root
  install_rendered /etc/apt/apt.conf.d/80keel-integrity 0644 root root
  install_rendered /etc/logrotate.d/keel-acct 0644 root root
  local unit changed=0
  for unit in keel-aide.service keel-aide.timer keel-chkrootkit.service keel-chkrootkit.timer; do
    install_rendered "/etc/systemd/system/${unit}" 0644 root root
    if last_changed; then changed=1; fi
  done
  if ((changed == 1)); then daemon_reload; fi
  apply_service keel-aide.timer none
  apply_service keel-chkrootkit.timer none
  # Debian's own timer mails its report, and a server without a mail program fails it.
  if systemctl is-enabled --quiet chkrootkit.timer 2>/dev/null; then
    systemctl disable --now --quiet chkrootkit.timer
    note_change "disabled chkrootkit.timer (keel-chkrootkit.timer runs the scan)"
  fi
  apply_service acct.service none
  restrict_toolchain
}

# chkrootkit needs binutils, whose assembler and linker no service account has a use for: an
# intruder in one should not build code on the server. Root only, kept across upgrades.
restrict_toolchain() {
  local tool path
  for tool in as ld; do
    path="$(readlink -f "/usr/bin/${tool}")"
    dpkg-statoverride --list "${path}" >/dev/null && continue
    dpkg-statoverride --update --add root root 0750 "${path}"
    note_change "${path} executable by root only"
  done
}

configure_sysctl() {
  local file
  for file in /etc/sysctl.d/60-keel.conf /etc/sysctl.d/61-keel-hardening.conf; do
    install_rendered "${file}" 0644 root root
    last_changed || continue
    if is_container; then
      info "container: kernel settings are the host's; ${file} applies on a real server"
    else
      # -e: a key this kernel lacks is skipped, not fatal (the tests check each name against
      # lynis's profile, not against a Debian kernel).
      sysctl -q -e -p "${file}"
    fi
  done
}

mount_data_volume() {
  local device="$1"
  if [[ -z "${device}" ]]; then
    ensure_dir "${DATA_DIR}" 0755 root root
    return 0
  fi
  wait_for 120 "data volume ${device} is attached" test -b "${device}" ||
    die "the data volume ${device} did not appear; is it attached to this droplet?"
  install_rendered /etc/systemd/system/srv-keel.mount 0644 root root
  if last_changed; then
    daemon_reload
  fi
  ensure_enabled srv-keel.mount
  ensure_started srv-keel.mount
  mountpoint -q "${DATA_DIR}" || die "${DATA_DIR} is not mounted"
}

ensure_swap() {
  local size_mb="$1"
  ((size_mb > 0)) || return 0
  if is_container; then
    info "container: no swap (swapon is not permitted)"
    return 0
  fi
  if [[ ! -f "${SWAP_FILE}" ]]; then
    fallocate -l "${size_mb}M" "${SWAP_FILE}"
    chmod 0600 "${SWAP_FILE}"
    mkswap -q "${SWAP_FILE}"
    note_change "created ${size_mb} MB swap file"
  fi
  if ! grep -q "^${SWAP_FILE} " /etc/fstab; then
    printf '%s none swap sw 0 0\n' "${SWAP_FILE}" >>/etc/fstab
    note_change "swap in /etc/fstab"
  fi
  if ! swapon --show=NAME --noheadings | grep -qx "${SWAP_FILE}"; then
    swapon "${SWAP_FILE}"
    note_change "swap on"
  fi
}

ensure_directories() {
  ensure_dir "${DATA_DIR}/releases" 0755 root root
  ensure_dir /var/lib/keel 0755 root root
  ensure_dir /var/lib/keel/uploads 0700 root root
  ensure_dir /var/lib/keel/acme 0755 root root
  ensure_dir /etc/keel 0750 root keel
}

main() {
  keel_start base "$1"
  shift
  local data_device="" swap_mb=0
  while (($# > 0)); do
    case "$1" in
      --data-device) data_device="$2" ;;
      --swap-mb) swap_mb="$2" ;;
      *) die "unknown argument $1" ;;
    esac
    shift 2
  done

  upgrade_packages
  ensure_packages nftables fail2ban python3-systemd unattended-upgrades
  ensure_accounts
  configure_operators
  configure_sshd
  configure_firewall
  configure_fail2ban
  configure_journald
  configure_updates
  configure_sysctl
  harden_host
  mount_data_volume "${data_device}"
  ensure_swap "${swap_mb}"
  ensure_directories
  detect_intrusions
  keel_finish
}

main "$@"
