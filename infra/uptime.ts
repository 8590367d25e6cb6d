// DigitalOcean uptime monitoring of the public API: alerts when /health stops answering from
// outside, when /ready does (the database, Redis or storage is out, which /health does not
// look at; this alert comes from outside even when the server cannot send mail), and when the
// TLS certificate is close to expiry (a failed renewal).
import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";

export interface UptimeArgs {
  /** Prefix of every cloud name, e.g. keel-staging. */
  readonly prefix: string;
  /** The public API host, e.g. api.example.com. */
  readonly apiHost: string;
  readonly alertEmail: string;
}

export class Uptime extends pulumi.ComponentResource {
  constructor(name: string, args: UptimeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("keel:infra:Uptime", name, {}, opts);
    const parent = { parent: this };

    const check = new digitalocean.UptimeCheck(
      `${name}-check`,
      {
        name: `${args.prefix}-health`,
        target: `https://${args.apiHost}/health`,
        type: "https",
        regions: ["eu_west", "us_east"],
      },
      parent,
    );
    const notifications = [{ emails: [args.alertEmail] }];

    new digitalocean.UptimeAlert(
      `${name}-down`,
      {
        name: `${args.prefix}: API down`,
        checkId: check.id,
        type: "down",
        period: "2m",
        notifications,
      },
      parent,
    );
    new digitalocean.UptimeAlert(
      `${name}-certificate`,
      {
        name: `${args.prefix}: TLS certificate expires within 14 days`,
        checkId: check.id,
        type: "ssl_expiry",
        threshold: 14,
        comparison: "less_than",
        period: "2m",
        notifications,
      },
      parent,
    );

    const ready = new digitalocean.UptimeCheck(
      `${name}-ready-check`,
      {
        name: `${args.prefix}-ready`,
        target: `https://${args.apiHost}/ready`,
        type: "https",
        regions: ["eu_west", "us_east"],
      },
      parent,
    );
    new digitalocean.UptimeAlert(
      `${name}-not-ready`,
      {
        name: `${args.prefix}: API not ready (database, Redis or storage)`,
        checkId: ready.id,
        type: "down",
        period: "2m",
        notifications,
      },
      parent,
    );

    this.registerOutputs({ target: check.target, readyTarget: ready.target });
  }
}
