// The host firewall (nftables) mirrors the cloud firewall: 22 from the allowed CIDRs, 80 and 443
// from everywhere, nothing else. fail2ban bans SSH password guessers on top of it.

function splitFamilies(cidrs: readonly string[]): { v4: string[]; v6: string[] } {
  return {
    v4: cidrs.filter((c) => !c.includes(":")),
    v6: cidrs.filter((c) => c.includes(":")),
  };
}

function nftSet(name: string, type: string, elements: readonly string[]): string {
  const lines = [`\tset ${name} {`, `\t\ttype ${type}`, "\t\tflags interval", "\t\tauto-merge"];
  if (elements.length > 0) lines.push(`\t\telements = { ${elements.join(", ")} }`);
  lines.push("\t}");
  return lines.join("\n");
}

export function renderNftables(sshAllowCidrs: readonly string[]): string {
  const { v4, v6 } = splitFamilies(sshAllowCidrs);
  return `#!/usr/sbin/nft -f
# Managed by Keel: host firewall, mirroring the DigitalOcean cloud firewall.
# Only Keel's own table is replaced, so tables of other tools (fail2ban) survive a reload.
table inet keel
delete table inet keel

table inet keel {
${nftSet("ssh_v4", "ipv4_addr", v4)}

${nftSet("ssh_v6", "ipv6_addr", v6)}

\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tct state invalid drop
\t\tiif "lo" accept
\t\t# ICMP that IPv4 and IPv6 need to work (path MTU, neighbour discovery), and ping.
\t\tip protocol icmp icmp type { destination-unreachable, time-exceeded, parameter-problem, echo-request } limit rate 10/second accept
\t\tip6 nexthdr icmpv6 icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, echo-request, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept
\t\ttcp dport 22 ip saddr @ssh_v4 accept
\t\ttcp dport 22 ip6 saddr @ssh_v6 accept
\t\ttcp dport { 80, 443 } accept
\t}

\tchain forward {
\t\ttype filter hook forward priority filter; policy drop;
\t}
}
`;
}

export function renderFail2banJail(sshAllowCidrs: readonly string[]): string {
  return `# Managed by Keel: ban SSH password guessers. The operator's own networks are never banned.
[DEFAULT]
banaction = nftables-multiport
banaction_allports = nftables-allports
ignoreip = 127.0.0.1/8 ::1 ${sshAllowCidrs.join(" ")}

[sshd]
enabled = true
backend = systemd
# OpenSSH 10 logs failed logins from sshd-session; Debian 13's defaults match only sshd, and
# fail2ban would never see a failure.
journalmatch = _SYSTEMD_UNIT=ssh.service + _COMM=sshd + _COMM=sshd-session
port = ssh
maxretry = 5
findtime = 10m
bantime = 1h
`;
}
