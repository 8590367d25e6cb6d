// Cloudflare DNS records for the API host. Not proxied: clients reach nginx directly, which
// keeps Let's Encrypt's HTTP-01 challenge and the server's own TLS end to end.
import { isIP } from "node:net";
import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";

export interface DnsTarget {
  readonly type: "A" | "AAAA" | "CNAME";
  readonly content: pulumi.Input<string>;
}

/** The records that point the API host at an existing server, given as an address or a name. */
export function existingHostTargets(host: string): DnsTarget[] {
  switch (isIP(host)) {
    case 4:
      return [{ type: "A", content: host }];
    case 6:
      return [{ type: "AAAA", content: host }];
    default:
      return [{ type: "CNAME", content: host }];
  }
}

export interface DnsArgs {
  readonly zoneId: string;
  /** The fully qualified API host, e.g. api.example.com. */
  readonly hostname: string;
  readonly targets: readonly DnsTarget[];
}

export class Dns extends pulumi.ComponentResource {
  public readonly records: cloudflare.DnsRecord[];

  constructor(name: string, args: DnsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("keel:infra:Dns", name, {}, opts);

    this.records = args.targets.map(
      (target) =>
        new cloudflare.DnsRecord(
          `${name}-${target.type.toLowerCase()}`,
          {
            zoneId: args.zoneId,
            name: args.hostname,
            type: target.type,
            content: target.content,
            ttl: 300,
            proxied: false,
            comment: "Managed by Keel (Pulumi)",
          },
          { parent: this },
        ),
    );

    this.registerOutputs({ hostnames: this.records.map((r) => r.name) });
  }
}
