// Runs the whole Pulumi program (index.ts) under Pulumi's mocks and records what it registers:
// each resource's type, name, inputs (secrets still wrapped) and options. Mocks answer only the
// one provider call the program is known to make; any other call fails the run.
import { resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type * as component from "../../provisioning/component";

const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface Registered {
  readonly type: string;
  readonly name: string;
  /** Inputs as the engine would receive them: secrets are `{ <sig>: <secret>, value }`. */
  readonly inputs: Record<string, unknown>;
  readonly dependsOn: readonly string[];
  readonly options: pulumi.CustomResourceOptions;
}

export interface ProgramRun {
  readonly resources: Registered[];
  /** Stack outputs, resolved. */
  readonly outputs: Record<string, unknown>;
  /** Names of the stack outputs that are secret. */
  readonly secretOutputs: string[];
  readonly calls: string[];
  /**
   * Each secret the program handed `new Provisioning(...)`, resolved: its value and whether it
   * was a secret Output. Recorded by a subclass the program constructs instead.
   */
  readonly provisioningSecrets: Record<string, { value: unknown; secret: boolean }>;
}

/** The program threw; `resources` is what it had registered by then. */
export class ProgramFailure extends Error {
  constructor(
    readonly reason: unknown,
    readonly resources: Registered[],
  ) {
    super(reason instanceof Error ? reason.message : String(reason));
    this.name = "ProgramFailure";
  }
}

/** Deterministic ids for the R2 permission groups the mocked Cloudflare API knows. */
export const PERMISSION_GROUP_IDS: Record<string, string> = {
  "Workers R2 Storage Bucket Item Read": "6a018a9f2fc74eb6b293b0c548f38b39",
  "Workers R2 Storage Bucket Item Write": "2efd5506f9c8494dacb1fa10a3e7d5b6",
};

export const MOCK_RESERVED_IP = "203.0.113.50";
export const MOCK_DROPLET_IPV6 = "2001:db8::50";
export const MOCK_TOKEN_VALUE = "mock-cloudflare-token-value";

/** A token's value: a token of a later generation (its name ends in it) is a new token. */
export function mockTokenValue(name: string): string {
  const generation = /-gen(\d+)$/.exec(name)?.[1];
  return generation === undefined ? MOCK_TOKEN_VALUE : `${MOCK_TOKEN_VALUE}-${generation}`;
}

/**
 * A valid staging configuration; tests override keys. Made-up values that a real stack could
 * have: the rules refuse documentation-only domains and addresses (example.com, 198.51.100.0/24).
 */
export function stagingConfig(): Record<string, unknown> {
  return {
    domain: "keel-ci.dev",
    cloudflareZoneId: "0123456789abcdef0123456789abcdef",
    cloudflareAccountId: "fedcba9876543210fedcba9876543210",
    sshPublicKey:
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeelTestKeyForMocksOnly0123456789abcd keel@test",
    sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nmock\n-----END OPENSSH PRIVATE KEY-----\n",
    sshAllowCidrs: ["85.10.197.7/32", "2a02:8108:1d40::/48"],
    frontendOrigins: ["https://app.keel-ci.dev"],
    acmeEmail: "ops@keel-ci.dev",
  };
}

/** A generated password the mocks hand out: it depends on the name and the keepers. */
export function mockPassword(name: string, generation: string): string {
  return `pw${Buffer.from(`${name}:${generation}`).toString("hex")}`;
}

function mockState(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  const inputs = args.inputs as Record<string, unknown>;
  switch (args.type) {
    case "random:index/randomPassword:RandomPassword": {
      const keepers = inputs.keepers as Record<string, string> | undefined;
      // Plain, like a provider that forgot to mark it: the program must make it secret itself.
      return { ...inputs, result: mockPassword(args.name, keepers?.generation ?? "") };
    }
    case "digitalocean:index/droplet:Droplet":
      return { ...inputs, ipv4Address: "192.0.2.10", ipv6Address: MOCK_DROPLET_IPV6 };
    case "digitalocean:index/reservedIp:ReservedIp":
      return { ...inputs, ipAddress: MOCK_RESERVED_IP };
    case "cloudflare:index/apiToken:ApiToken":
      return { ...inputs, value: mockTokenValue(String(inputs.name)) };
    default:
      return inputs;
  }
}

function toConfig(config: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) => [
      `keel:${key}`,
      typeof value === "string" ? value : JSON.stringify(value),
    ]),
  );
}

const root = resolve(__dirname, "..", "..");

/**
 * Runs index.ts with `config` (keel: keys) under mocks, as stack `stack`. Resolves once every
 * export has settled. Throws what the program throws (e.g. a ConfigError).
 */
export async function runProgram(
  config: Record<string, unknown>,
  stack = "staging",
): Promise<ProgramRun> {
  const resources: Registered[] = [];
  const calls: string[] = [];
  const options = new Map<string, { dependsOn: string[]; options: pulumi.CustomResourceOptions }>();

  pulumi.runtime.setAllConfig(toConfig(config), [
    "keel:sshPrivateKey",
    "keel:backupPassphrase",
    "keel:smtpPassword",
  ]);
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const recorded = options.get(`${args.type}::${args.name}`);
        resources.push({
          type: args.type,
          name: args.name,
          inputs: args.inputs as Record<string, unknown>,
          dependsOn: recorded?.dependsOn ?? [],
          options: recorded?.options ?? {},
        });
        return { id: `${args.name}-id`, state: mockState(args) };
      },
      call(args) {
        calls.push(args.token);
        if (
          args.token ===
          "cloudflare:index/getApiTokenPermissionGroupsList:getApiTokenPermissionGroupsList"
        ) {
          const name = decodeURIComponent(String((args.inputs as { name: string }).name));
          const id = PERMISSION_GROUP_IDS[name];
          return { results: id === undefined ? [] : [{ id, name, scopes: [], category: "" }] };
        }
        throw new Error(`unexpected provider call ${args.token}`);
      },
    },
    "keel",
    stack,
    false,
  );
  const entry = require.resolve(resolve(root, "index.ts"));
  delete require.cache[entry];
  let program: Record<string, pulumi.Output<unknown> | string> = {};
  const recorded: { args?: component.ProvisioningArgs } = {};
  const restoreProvisioning = recordProvisioning(recorded);
  try {
    // As `pulumi up` does: the program runs inside the root stack resource.
    await pulumi.runtime.runInPulumiStack(() => {
      // Record every resource's options (dependsOn, secrets, retention) as it is constructed.
      pulumi.runtime.registerStackTransformation((args) => {
        const raw = args.opts.dependsOn;
        const dependsOn = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).map(
          (dep) => (dep as { __name?: string }).__name ?? "?",
        );
        options.set(`${args.type}::${args.name}`, { dependsOn, options: args.opts });
        return undefined;
      });
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      program = require(entry) as Record<string, pulumi.Output<unknown> | string>;
      return Promise.resolve(program);
    });
  } catch (err) {
    await pulumi.runtime.disconnect();
    throw new ProgramFailure(err, resources);
  } finally {
    restoreProvisioning();
  }
  const outputs: Record<string, unknown> = {};
  const secretOutputs: string[] = [];
  for (const [name, value] of Object.entries(program)) {
    if (pulumi.Output.isInstance(value)) {
      outputs[name] = await promiseOf(value);
      if (await pulumi.isSecret(value)) secretOutputs.push(name);
    } else {
      outputs[name] = value;
    }
  }
  const provisioningSecrets: ProgramRun["provisioningSecrets"] = {};
  for (const [name, value] of Object.entries(recorded.args?.secrets ?? {})) {
    const output = pulumi.output(value);
    provisioningSecrets[name] = {
      value: await promiseOf(output),
      secret: await pulumi.isSecret(output),
    };
  }
  // Wait until every registration queued behind an apply has reached the mock monitor.
  await pulumi.runtime.disconnect();
  return { resources, outputs, secretOutputs, calls, provisioningSecrets };
}

/**
 * Makes index.ts, required afresh, construct a Provisioning that records its args in `into`;
 * returns what puts the real class back.
 */
function recordProvisioning(into: { args?: component.ProvisioningArgs }): () => void {
  const path = require.resolve(resolve(root, "provisioning", "component.ts"));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const real = require(path) as typeof component;
  const cached = require.cache[path];
  if (cached === undefined) throw new Error(`${path} is not in the require cache`);
  class Recording extends real.Provisioning {
    constructor(
      name: string,
      args: component.ProvisioningArgs,
      opts?: pulumi.ComponentResourceOptions,
    ) {
      super(name, args, opts);
      into.args = args;
    }
  }
  cached.exports = { ...real, Provisioning: Recording };
  return () => {
    cached.exports = real;
  };
}

/** Resolves an Output's value (undefined while unknown). */
export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolvePromise) => output.apply((value) => resolvePromise(value)));
}

export function isSecretInput(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Record<string, unknown>)[SECRET_SIG_KEY] === SECRET_SIG
  );
}

/** The plain value of an input, secret or not. */
export function plain(value: unknown): unknown {
  return isSecretInput(value) ? (value as { value: unknown }).value : value;
}

export function byType(run: ProgramRun, type: string): Registered[] {
  return run.resources.filter((r) => r.type === type);
}

export function one(run: ProgramRun, type: string, name: string): Registered {
  const found = run.resources.find((r) => r.type === type && r.name === name);
  if (found === undefined) {
    throw new Error(
      `no ${type} named ${name}; registered: ${run.resources.map((r) => `${r.type}/${r.name}`).join(", ")}`,
    );
  }
  return found;
}
