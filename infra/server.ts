// The droplet and what belongs to it: SSH key, cloud firewall, data volume, reserved IP and
// DigitalOcean's own monitoring alerts (CPU, memory, disk), which need no software on the server.
import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";
import type { Host } from "./host";
import { volumeDevice } from "./names";

const ANYWHERE = ["0.0.0.0/0", "::/0"];

export interface ServerArgs {
  /** Prefix of every cloud name, e.g. keel-staging. */
  readonly prefix: string;
  readonly region: string;
  readonly size: string;
  readonly sshPublicKey: string;
  /** Who may reach port 22; validated by the config. */
  readonly sshAllowCidrs: readonly string[];
  /** The data volume's name (infra/names.ts). */
  readonly volumeName: string;
  readonly volumeSizeGb: number;
  /** Keep the data volume when the stack is destroyed. */
  readonly retainData: boolean;
  /** Adopt this existing volume (kept by an earlier destroy) instead of creating one. */
  readonly adoptVolumeId?: string;
  /** Where DigitalOcean sends CPU, memory and disk alerts. */
  readonly alertEmail: string;
}

/** Inbound rules: 80 and 443 from everywhere, 22 from the allowed CIDRs, nothing else. */
export function inboundRules(
  sshAllowCidrs: readonly string[],
): digitalocean.types.input.FirewallInboundRule[] {
  return [
    { protocol: "tcp", portRange: "22", sourceAddresses: [...sshAllowCidrs] },
    { protocol: "tcp", portRange: "80", sourceAddresses: ANYWHERE },
    { protocol: "tcp", portRange: "443", sourceAddresses: ANYWHERE },
  ];
}

/** Outbound: the server fetches packages, talks to the ACME server and R2, resolves names. */
const OUTBOUND_RULES: digitalocean.types.input.FirewallOutboundRule[] = [
  { protocol: "tcp", portRange: "1-65535", destinationAddresses: ANYWHERE },
  { protocol: "udp", portRange: "1-65535", destinationAddresses: ANYWHERE },
  { protocol: "icmp", destinationAddresses: ANYWHERE },
];

/** Alert policies: [metric, threshold in percent], each sustained for 5 minutes. */
const ALERTS: ReadonlyArray<readonly [string, string, number]> = [
  ["cpu", "v1/insights/droplet/cpu", 90],
  ["memory", "v1/insights/droplet/memory_utilization_percent", 90],
  ["disk", "v1/insights/droplet/disk_utilization_percent", 85],
];

export class Server extends pulumi.ComponentResource {
  /** Changes when the droplet is replaced; provisioning then starts from the first step. */
  public readonly dropletId: pulumi.Output<string>;
  /** The reserved IPv4 address: stable across droplet rebuilds. */
  public readonly ipv4: pulumi.Output<string>;
  public readonly ipv6: pulumi.Output<string>;
  /** The data volume's name; it appears as /dev/disk/by-id/scsi-0DO_Volume_<name>. */
  public readonly volumeName: pulumi.Output<string>;
  /** The droplet as provisioning and DNS see it. */
  public readonly host: Host;

  constructor(name: string, args: ServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("keel:infra:Server", name, {}, opts);
    const parent = { parent: this };

    const sshKey = new digitalocean.SshKey(
      `${name}-ssh-key`,
      { name: args.prefix, publicKey: args.sshPublicKey },
      parent,
    );

    const droplet = new digitalocean.Droplet(
      `${name}-droplet`,
      {
        name: args.prefix,
        image: "debian-13-x64",
        region: args.region,
        size: args.size,
        sshKeys: [sshKey.fingerprint],
        monitoring: true,
        ipv6: true,
        gracefulShutdown: true,
        tags: ["keel", args.prefix],
      },
      parent,
    );
    const dropletId = droplet.id.apply(Number);

    const firewall = new digitalocean.Firewall(
      `${name}-firewall`,
      {
        name: args.prefix,
        dropletIds: [dropletId],
        inboundRules: inboundRules(args.sshAllowCidrs),
        outboundRules: OUTBOUND_RULES,
      },
      parent,
    );

    const volume = new digitalocean.Volume(
      `${name}-data`,
      {
        name: args.volumeName,
        region: args.region,
        size: args.volumeSizeGb,
        initialFilesystemType: "ext4",
        initialFilesystemLabel: "keel-data",
        description: "Keel data: PostgreSQL cluster, certificates, API releases",
      },
      {
        ...parent,
        retainOnDelete: args.retainData,
        ...(args.adoptVolumeId === undefined ? {} : { import: args.adoptVolumeId }),
      },
    );
    const attachment = new digitalocean.VolumeAttachment(
      `${name}-data-attachment`,
      { dropletId, volumeId: volume.id },
      parent,
    );

    const reservedIp = new digitalocean.ReservedIp(`${name}-ip`, { region: args.region }, parent);
    const assignment = new digitalocean.ReservedIpAssignment(
      `${name}-ip-assignment`,
      { ipAddress: reservedIp.ipAddress, dropletId },
      parent,
    );

    for (const [metric, type, threshold] of ALERTS) {
      new digitalocean.MonitorAlert(
        `${name}-alert-${metric}`,
        {
          description: `${args.prefix}: ${metric} above ${threshold}% for 5 minutes`,
          type,
          compare: "GreaterThan",
          value: threshold,
          window: "5m",
          entities: [droplet.id],
          alerts: { emails: [args.alertEmail] },
        },
        parent,
      );
    }

    this.dropletId = droplet.id;
    this.ipv4 = reservedIp.ipAddress;
    this.ipv6 = droplet.ipv6Address;
    this.volumeName = volume.name;
    this.host = {
      address: this.ipv4,
      id: this.dropletId,
      dnsTargets: [
        { type: "A", content: this.ipv4 },
        { type: "AAAA", content: this.ipv6 },
      ],
      dataDevice: this.volumeName.apply(volumeDevice),
      ready: [firewall, attachment, assignment],
    };

    this.registerOutputs({
      dropletId: this.dropletId,
      ipv4: this.ipv4,
      ipv6: this.ipv6,
      volumeName: this.volumeName,
    });
  }
}
