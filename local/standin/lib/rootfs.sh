# shellcheck shell=bash
# The stand-in's Debian 13 root filesystem. mmdebstrap builds it once; it is cached as a zstd
# tar named after a hash of this file (the recipe), so editing the recipe rebuilds it. The
# archive is written under a temporary name and renamed into place, so a crash never leaves a
# partial entry, and every use checks its zstd checksums first.

readonly ROOTFS_SUITE="trixie"
readonly ROOTFS_MIRROR="http://deb.debian.org/debian"
readonly ROOTFS_PACKAGES="systemd,systemd-sysv,dbus,openssh-server,iproute2,ca-certificates,sudo,udev,kmod,ifupdown,netbase,less,procps,curl,gnupg"
# The "server" flavour adds the packages Keel's steps install, so that their units can be checked
# offline (systemd-analyze security) without provisioning anything. The stand-in itself is the
# bare "standin" flavour: provisioning must work from nothing.
readonly ROOTFS_SERVER_PACKAGES="nginx,certbot,postgresql-17,postgresql-17-timescaledb,redis-server,nftables,fail2ban,sysstat,logrotate,prometheus,prometheus-alertmanager,prometheus-node-exporter,prometheus-postgres-exporter,prometheus-redis-exporter,prometheus-nginx-exporter"
# The "s3" flavour is not a guest: it holds moto (an S3 server) and nginx (its TLS front), run
# with chroot beside the guest as the backup bucket, because Debian 12 has no S3 server that
# serves pgBackRest faithfully (see local/README.md).
readonly ROOTFS_S3_PACKAGES="python3-moto,python3-flask-cors,nginx"
ROOTFS_FLAVOUR="standin"
readonly ROOTFS_CACHE_DIR="${KEEL_STANDIN_CACHE_DIR:-/var/cache/keel-standin}"
readonly ROOTFS_TAR_FLAGS=(--numeric-owner --xattrs --xattrs-include='*' --acls)

rootfs_packages() {
  case "${ROOTFS_FLAVOUR}" in
    server) printf '%s,%s' "${ROOTFS_PACKAGES}" "${ROOTFS_SERVER_PACKAGES}" ;;
    s3) printf '%s' "${ROOTFS_S3_PACKAGES}" ;;
    *) printf '%s' "${ROOTFS_PACKAGES}" ;;
  esac
}

rootfs_archive_path() {
  local key
  key="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
  printf '%s/rootfs-%s-%s.tar.zst' "${ROOTFS_CACHE_DIR}" "${ROOTFS_FLAVOUR}" "${key}"
}

write_apt_sources() {
  local root="$1"
  rm -f "${root}/etc/apt/sources.list"
  cat >"${root}/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: ${ROOTFS_MIRROR}
Suites: ${ROOTFS_SUITE} ${ROOTFS_SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.pgp

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: ${ROOTFS_SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.pgp
SOURCES
}

# What every run shares: slirp's DNS, no consoles to log in on, and no identity (host keys
# and machine-id are made per run, so two runs never share them).
customize_rootfs() {
  local root="$1"
  local unit
  write_apt_sources "${root}"
  printf 'nameserver 10.0.2.3\n' >"${root}/etc/resolv.conf"
  chmod 0644 "${root}/etc/resolv.conf"
  printf 'standin\n' >"${root}/etc/hostname"
  for unit in getty@.service serial-getty@.service console-getty.service container-getty@.service; do
    ln -sfn /dev/null "${root}/etc/systemd/system/${unit}"
  done
  rm -f "${root}"/etc/ssh/ssh_host_*
  : >"${root}/etc/machine-id"
}

# Set while a build is under way, so that teardown can discard a half-done build.
ROOTFS_BUILD_DIR=""

discard_build() {
  if [[ -n "${ROOTFS_BUILD_DIR}" ]]; then
    kill_processes_mentioning "${ROOTFS_BUILD_DIR}"
    unmount_under "${ROOTFS_BUILD_DIR}"
    rm -rf "${ROOTFS_BUILD_DIR}"
    ROOTFS_BUILD_DIR=""
  fi
}

build_rootfs() {
  local archive="$1"
  local work
  work="$(mktemp -d "${ROOTFS_CACHE_DIR}/build.XXXXXX")"
  ROOTFS_BUILD_DIR="${work}"
  mkdir "${work}/root"
  mount -t tmpfs -o size=4g,mode=0755 "${STANDIN_PREFIX}-build" "${work}/root"
  stage "building the Debian 13 root filesystem with mmdebstrap (cold cache)" "${work}/mmdebstrap.log"
  interruptible mmdebstrap --variant=minbase --include="$(rootfs_packages)" \
    "${ROOTFS_SUITE}" "${work}/root" "${ROOTFS_MIRROR}" >"${work}/mmdebstrap.log" 2>&1 \
    || fail "mmdebstrap failed"
  customize_rootfs "${work}/root"
  stage "archiving the root filesystem to ${archive}"
  tar "${ROOTFS_TAR_FLAGS[@]}" -C "${work}/root" -cf - . | zstd -q -T0 -o "${work}/rootfs.tar.zst"
  mv -f "${work}/rootfs.tar.zst" "${archive}"
  discard_build
}

remove_stale_cache_entries() {
  local keep="$1"
  local entry
  for entry in "${ROOTFS_CACHE_DIR}"/build.* "${ROOTFS_CACHE_DIR}/rootfs-${ROOTFS_FLAVOUR}"-*.tar.zst; do
    if [[ -e "${entry}" && "${entry}" != "${keep}" ]]; then
      log "removing stale cache entry ${entry}"
      unmount_under "${entry}"
      rm -rf "${entry}"
    fi
  done
}

# ensure_rootfs: makes sure that rootfs_archive_path names a verified archive, building it if
# needed. Runs under a lock so that concurrent runs build it once.
ensure_rootfs() {
  local archive
  local lock
  archive="$(rootfs_archive_path)"
  mkdir -p "${ROOTFS_CACHE_DIR}"
  exec {lock}>"${ROOTFS_CACHE_DIR}/.lock"
  flock -w 900 "${lock}" || fail "another run held ${ROOTFS_CACHE_DIR}/.lock for 15 minutes"
  remove_stale_cache_entries "${archive}"
  if [[ -f "${archive}" ]] && zstd -q -t "${archive}" 2>/dev/null; then
    log "using the cached root filesystem ${archive}"
  else
    if [[ -e "${archive}" ]]; then
      log "the cached root filesystem ${archive} is corrupt; rebuilding it"
      rm -f "${archive}"
    fi
    build_rootfs "${archive}"
  fi
  exec {lock}>&-
}
