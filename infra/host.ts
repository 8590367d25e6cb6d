// The machine Keel provisions: a droplet created by the stack, or a server the operator brings
// (keel:existingHost). Provisioning and DNS only need what is described here.
import * as pulumi from "@pulumi/pulumi";
import { existingHostTargets, type DnsTarget } from "./dns";

export interface Host {
  /** Where Pulumi connects over SSH. */
  readonly address: pulumi.Input<string>;
  /** Changes when the machine is replaced, so provisioning starts again from the first step. */
  readonly id: pulumi.Input<string>;
  readonly dnsTargets: readonly DnsTarget[];
  /** Block device of the data volume; "" keeps the data directory on the root disk. */
  readonly dataDevice: pulumi.Input<string>;
  /** Resources that must exist before provisioning: addresses, volume, firewall. */
  readonly ready: readonly pulumi.Resource[];
}

/** A server the operator brings: no volume, DNS points at its address or name. */
export function existingHost(address: string): Host {
  return {
    address,
    id: address,
    dnsTargets: existingHostTargets(address),
    dataDevice: "",
    ready: [],
  };
}
