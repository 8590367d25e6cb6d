// The Provisioning component: one remote.Command per step, in order, over SSH, plus the
// upload of the API release before the api step. Outputs are resolved once per step with
// apply; no resource is created inside an apply.
import { remote, types } from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { uploadPath } from "./layout";
import { buildStep, STEPS, stepCommandFor } from "./steps";
import type { SecretName, SecretValues, ServerValues } from "./values";

export interface ProvisioningArgs {
  /** Address Pulumi connects to: the reserved IP, or the existing host. */
  readonly host: pulumi.Input<string>;
  readonly user: string;
  readonly privateKey: pulumi.Input<string>;
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

    let previous: pulumi.Resource | undefined;
    for (const step of STEPS) {
      const handlesSecrets = step.secrets.length > 0;
      // A step resolves only the secrets it declares, so the others' plans stay non-secret.
      const stepSecrets = pulumi.all(
        Object.fromEntries(step.secrets.map((key) => [key, args.secrets[key]])),
      ) as pulumi.Output<Partial<SecretValues>>;
      const plan = pulumi.all([values, stepSecrets]).apply(([v, s]) => buildStep(step.name, v, s));
      const dependsOn: pulumi.Resource[] = previous === undefined ? [] : [previous];

      if (step.name === "api") {
        dependsOn.push(
          new remote.CopyToRemote(
            `${name}-api-release`,
            {
              connection,
              source: values.apply((v) => new pulumi.asset.FileAsset(v.release.archive)),
              remotePath: values.apply((v) => uploadPath(v.release.id)),
              triggers: [values.apply((v) => v.release.id), args.serverId],
            },
            { parent: this, dependsOn: previous === undefined ? [] : [previous] },
          ),
        );
      }

      const command = new remote.Command(
        `${name}-${step.name}`,
        {
          // The first step waits for a new droplet's SSH to come up, however long it takes.
          connection: step.name === "wait" ? { ...connection, dialErrorLimit: -1 } : connection,
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
