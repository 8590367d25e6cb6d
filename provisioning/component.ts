// The Provisioning component: a check from this machine that the server answers SSH, then one
// remote.Command per step, in order, over SSH, plus the upload of the API release before the
// api step. Outputs are resolved once per step with apply; no resource is created inside an
// apply.
import { local, remote, types } from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { uploadPath } from "./layout";
import { REACH_COMMAND, type ReachRequest } from "./reach";
import { buildStep, STEPS, stepCommandFor } from "./steps";
import type { SecretName, SecretValues, ServerValues } from "./values";

/** The port the connections use: the default, which they leave unset. */
const SSH_PORT = 22;

export interface ProvisioningArgs {
  /** Address Pulumi connects to: the reserved IP, or the existing host. */
  readonly host: pulumi.Input<string>;
  readonly user: string;
  readonly privateKey: pulumi.Input<string>;
  /** A droplet this stack creates, which may still be booting; false for keel:existingHost. */
  readonly newServer: boolean;
  /** keel:sshAllowCidrs, named when SSH cannot be reached. */
  readonly sshAllowCidrs: readonly string[];
  /** False when keel:apiRelease names a release the server keeps: nothing to upload. */
  readonly uploadsRelease: boolean;
  /**
   * Identity of the machine (droplet id, or the existing host's address). Part of every
   * step's trigger, so a replaced droplet is provisioned from the start.
   */
  readonly serverId: pulumi.Input<string>;
  readonly values: pulumi.Input<ServerValues>;
  readonly secrets: { readonly [K in SecretName]: pulumi.Input<string> };
}

export class Provisioning extends pulumi.ComponentResource {
  /** The command of each step, by step name, in order. */
  public readonly commands: Record<string, remote.Command> = {};

  constructor(name: string, args: ProvisioningArgs, opts?: pulumi.ComponentResourceOptions) {
    super("keel:provisioning:Provisioning", name, {}, opts);

    const values = pulumi.output(args.values);
    const connection: types.input.remote.ConnectionArgs = {
      host: args.host,
      user: args.user,
      privateKey: args.privateKey,
      perDialTimeout: 30,
    };
    // The first step waits for a new droplet's SSH to come up, however long it takes; the reach
    // command has proved the network path. An existing host is up: about two minutes of dials.
    const waitConnection = { ...connection, dialErrorLimit: args.newServer ? -1 : 4 };

    // From the machine running `pulumi up`, before any step: SSH must answer within minutes, or
    // this fails naming keel:sshAllowCidrs instead of leaving the wait step to retry for long.
    // A new droplet gets longer, as it may still be booting. Runs again for a new server or
    // address, and when its request changes (a changed keel:sshAllowCidrs is checked at once).
    const reach = new local.Command(
      `${name}-reach`,
      {
        create: REACH_COMMAND,
        stdin: pulumi.output(args.host).apply((host) => {
          const request: ReachRequest = {
            host,
            port: SSH_PORT,
            timeoutSeconds: args.newServer ? 600 : 120,
            sshAllowCidrs: args.sshAllowCidrs,
            existingHost: !args.newServer,
          };
          return JSON.stringify(request);
        }),
        triggers: [args.serverId, args.host],
      },
      { parent: this },
    );

    let previous: pulumi.Resource = reach;
    for (const step of STEPS) {
      const handlesSecrets = step.secrets.length > 0;
      // A step resolves only the secrets it declares, so the others' plans stay non-secret.
      const stepSecrets = pulumi.all(
        Object.fromEntries(step.secrets.map((key) => [key, args.secrets[key]])),
      ) as pulumi.Output<Partial<SecretValues>>;
      const plan = pulumi.all([values, stepSecrets]).apply(([v, s]) => buildStep(step.name, v, s));
      const dependsOn: pulumi.Resource[] = [previous];

      if (step.name === "api" && args.uploadsRelease) {
        dependsOn.push(
          new remote.CopyToRemote(
            `${name}-api-release`,
            {
              connection,
              source: values.apply((v) => new pulumi.asset.FileAsset(v.release.archive)),
              remotePath: values.apply((v) => uploadPath(v.release.id)),
              triggers: [values.apply((v) => v.release.id), args.serverId],
            },
            { parent: this, dependsOn: [previous] },
          ),
        );
      }

      const command = new remote.Command(
        `${name}-${step.name}`,
        {
          connection: step.name === "wait" ? waitConnection : connection,
          create: values.apply((v) => stepCommandFor(step.name, v)),
          stdin: plan.apply((p) => p.stdin),
          triggers: [plan.apply((p) => p.trigger), args.serverId],
          logging: handlesSecrets ? "none" : "stdoutAndStderr",
        },
        {
          parent: this,
          dependsOn,
          deleteBeforeReplace: true,
          additionalSecretOutputs: handlesSecrets ? ["stdout", "stderr"] : [],
          customTimeouts: { create: `${step.timeoutMinutes}m`, update: `${step.timeoutMinutes}m` },
        },
      );
      this.commands[step.name] = command;
      previous = command;
    }

    this.registerOutputs({});
  }
}
