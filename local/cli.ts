// `sudo npm run local [-- up|down|status|key]`: the whole Keel platform on this machine, with
// no cloud account. `up` boots a local Debian 13 system (the stand-in: systemd-nspawn in a
// private network namespace, pebble as the ACME server, s3rver as R2) and provisions it with the
// same step list and the same config-to-values mapping as `pulumi up`; it keeps running until
// `down`. A second `up` re-applies only the steps whose inputs changed, exactly as `pulumi up`
// does. Its state (ready event, applied triggers, secrets) lives in a root-only directory.
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { buildRelease } from "../provisioning/release";
import { OPERATOR_USER } from "../provisioning/render/operator";
import { LOCAL_TARGET_FILE } from "../tools/ops/local-target";
import { keelConfig, readStackFile } from "../tools/stack-file";
import {
  applyChanges,
  STANDIN_KEYS,
  standinSecrets,
  standinValues,
  type AppliedTriggers,
} from "./provision";
import {
  attachStandin,
  bootDetachedStandin,
  standinRunning,
  stopDetachedStandin,
  type ReadyEvent,
  type SshTarget,
} from "./standin";
import type { SecretValues } from "../provisioning/values";

const ROOT = resolve(__dirname, "..");
const STATE_DIR = process.env.KEEL_LOCAL_DIR ?? "/var/lib/keel-local";
const ROOTFS_RECIPE = join(__dirname, "standin", "lib", "rootfs.sh");
const CACHE_DIR = process.env.KEEL_STANDIN_CACHE_DIR ?? "/var/cache/keel-standin";

const USAGE = `usage: sudo npm run local [-- up [--stack-file FILE]|down|status|key]
  up      boot the local platform (or reuse the running one) and apply what changed (default)
  down    stop it; its data goes with it
  status  say whether it runs, and where
  key     print the admin API key (it is kept in ${STATE_DIR}/admin-api-key, mode 0600)
Config: the keel: keys of --stack-file (default Pulumi.local.yaml, optional) override the
built-in defaults, except ${STANDIN_KEYS.join(", ")}, which are the local system's.`;

interface LocalState {
  readonly ready: ReadyEvent;
  applied: AppliedTriggers;
}

const paths = {
  state: join(STATE_DIR, "state.json"),
  secrets: join(STATE_DIR, "secrets.json"),
  adminKey: join(STATE_DIR, "admin-api-key"),
  ca: join(STATE_DIR, "ca.pem"),
  log: join(STATE_DIR, "harness.log"),
  operatorKey: join(STATE_DIR, "operator-key"),
  operatorTarget: join(STATE_DIR, LOCAL_TARGET_FILE),
  knownHosts: join(STATE_DIR, "known_hosts"),
};

function say(line = ""): void {
  process.stdout.write(`${line}\n`);
}

function readState(): LocalState | undefined {
  if (!existsSync(paths.state)) return undefined;
  return JSON.parse(readFileSync(paths.state, "utf8")) as LocalState;
}

function writePrivate(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Files the operator reads with `npm run verify` belong to the user who ran sudo. */
function giveToInvokingUser(path: string): void {
  const uid = Number(process.env.SUDO_UID);
  const gid = Number(process.env.SUDO_GID);
  if (Number.isInteger(uid) && Number.isInteger(gid) && uid > 0) chownSync(path, uid, gid);
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    console.error(
      "keel local: the local platform needs root (network namespaces, systemd-nspawn): sudo npm run local",
    );
    process.exit(1);
  }
}

/** Installs the Debian packages the stand-in needs, from the one list in host-packages.sh. */
function ensureHostPackages(): void {
  const result = spawnSync("bash", [join(__dirname, "host-packages.sh"), "install"], {
    stdio: "inherit",
  });
  if (result.status !== 0) process.exit(1);
}

function cachedRootfs(): boolean {
  const key = createHash("sha256").update(readFileSync(ROOTFS_RECIPE)).digest("hex").slice(0, 16);
  return existsSync(join(CACHE_DIR, `rootfs-standin-${key}.tar.zst`));
}

/** The local stack's own keys, from its stack file when there is one. */
function localConfig(stackFile: string): Record<string, unknown> {
  if (!existsSync(stackFile)) return {};
  const config = keelConfig(readStackFile(stackFile, "local"));
  for (const key of STANDIN_KEYS.filter((k) => k in config)) {
    say(`note: ${stackFile} sets keel:${key}, which the local platform decides; ignored`);
  }
  return config;
}

/** The local operator key (made once), added to the stack's own operator keys. */
function withOperatorKey(config: Record<string, unknown>): Record<string, unknown> {
  if (!existsSync(paths.operatorKey)) {
    const made = spawnSync(
      "ssh-keygen",
      ["-q", "-t", "ed25519", "-N", "", "-C", "keel-local-operator", "-f", paths.operatorKey],
      { stdio: "inherit" },
    );
    if (made.status !== 0) throw new Error("ssh-keygen could not make the local operator key");
  }
  giveToInvokingUser(paths.operatorKey);
  const key = readFileSync(`${paths.operatorKey}.pub`, "utf8").trim();
  const given: unknown = config.operatorKeys ?? [];
  // Anything but a list is left for the config validation to name.
  return Array.isArray(given)
    ? { ...config, operatorKeys: [...(given as unknown[]), key] }
    : config;
}

/** What `npm run ops -- --local` needs to reach the local platform as an operator. */
function writeOperatorTarget(ready: ReadyEvent): void {
  writeFileSync(paths.knownHosts, readFileSync(ready.ssh.knownHostsPath), { mode: 0o644 });
  const target: SshTarget = {
    host: ready.ssh.host,
    port: ready.ssh.port,
    user: OPERATOR_USER,
    privateKeyPath: paths.operatorKey,
    knownHostsPath: paths.knownHosts,
  };
  writeFileSync(paths.operatorTarget, `${JSON.stringify(target)}\n`, { mode: 0o644 });
}

function stopped(state: LocalState | undefined): boolean {
  return state === undefined || !standinRunning(state.ready);
}

async function up(stackFile: string): Promise<void> {
  requireRoot();
  ensureHostPackages();
  // A bad stack file fails before anything boots.
  const config = localConfig(stackFile);
  const started = performance.now();
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  chmodSync(STATE_DIR, 0o711);

  let state = readState();
  let secrets: SecretValues;
  /** How this run started the system: with a root filesystem to build, from the cache, or not. */
  let boot: "cold" | "warm" | undefined;
  if (stopped(state)) {
    const cold = !cachedRootfs();
    boot = cold ? "cold" : "warm";
    say(
      cold
        ? "booting a local Debian 13 system; the first time builds its root filesystem (about 20 s more)"
        : "booting a local Debian 13 system",
    );
    rmSync(paths.state, { force: true });
    writePrivate(paths.log, "");
    const ready = await bootDetachedStandin(paths.log);
    state = { ready, applied: {} };
    writePrivate(paths.state, JSON.stringify(state));
    secrets = standinSecrets(ready.s3, ready.backupS3);
    writePrivate(paths.secrets, JSON.stringify(secrets));
  } else {
    say(`the local platform runs (stand-in ${state?.ready.runId}); applying what changed`);
    // Secrets saved before keel:smtpPassword existed lack it; the stand-in sends no mail.
    secrets = {
      smtpPassword: "",
      ...(JSON.parse(readFileSync(paths.secrets, "utf8")) as Partial<SecretValues>),
    } as SecretValues;
  }
  const current = state as LocalState;
  const standin = attachStandin(current.ready);

  say("building the API release");
  const release = await buildRelease(ROOT);
  const values = standinValues(standin, release, withOperatorKey(config));
  const runs = await applyChanges(
    standin,
    values,
    secrets,
    current.applied,
    (name, trigger) => {
      current.applied[name] = trigger;
      writePrivate(paths.state, JSON.stringify(current));
    },
    (line) => say(`  ${line}`),
  );

  writePrivate(paths.adminKey, `${secrets.adminApiKey}\n`);
  giveToInvokingUser(paths.adminKey);
  writeFileSync(paths.ca, await standin.acmeRootPem(), { mode: 0o644 });
  writeOperatorTarget(current.ready);
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  const how = { cold: "a cold boot, the root filesystem built", warm: "a warm boot" };
  say();
  say(
    runs.length === 0
      ? `nothing changed (${seconds} s)`
      : `ready in ${seconds} s (${boot === undefined ? "re-applied" : how[boot]}; ${runs.length} step(s) run)`,
  );
  printAccess(current.ready);
}

function printAccess(ready: ReadyEvent): void {
  const https = ready.ports["443"];
  const http = ready.ports["80"];
  const url = `https://${ready.domain}:${https}`;
  say(`  API        ${url}`);
  say(`  admin key  ${paths.adminKey} (mode 0600; \`sudo npm run local -- key\` prints it)`);
  say(`  trust      ${paths.ca} (the root of the local ACME server, pebble)`);
  say(
    `  try        curl --cacert ${paths.ca} --resolve ${ready.domain}:${https}:127.0.0.1 ${url}/health`,
  );
  say(
    `  verify     npm run verify -- --url ${url} --http-url http://${ready.domain}:${http} --ca ${paths.ca} --resolve ${ready.domain}:127.0.0.1 --api-key-file ${paths.adminKey}`,
  );
  say(`  operate    npm run ops -- --local status`);
  say(`  stop       sudo npm run local -- down`);
}

async function down(): Promise<void> {
  requireRoot();
  const state = readState();
  if (state !== undefined && standinRunning(state.ready)) {
    say(`stopping the local platform (stand-in ${state.ready.runId})`);
    await stopDetachedStandin(state.ready);
  } else {
    say("the local platform is not running");
  }
  for (const path of [
    paths.state,
    paths.secrets,
    paths.adminKey,
    paths.ca,
    paths.operatorKey,
    `${paths.operatorKey}.pub`,
    paths.operatorTarget,
    paths.knownHosts,
  ]) {
    rmSync(path, { force: true });
  }
}

function status(): void {
  const state = readState();
  if (stopped(state)) {
    say("the local platform is not running: sudo npm run local");
    process.exitCode = 1;
    return;
  }
  say(`the local platform runs (stand-in ${state?.ready.runId})`);
  printAccess((state as LocalState).ready);
}

function key(): void {
  if (stopped(readState())) {
    console.error("keel local: the local platform is not running");
    process.exit(1);
  }
  process.stdout.write(readFileSync(paths.adminKey, "utf8"));
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      "stack-file": { type: "string", default: join(ROOT, "Pulumi.local.yaml") },
    },
  });
  const [verb = "up", ...rest] = positionals;
  if (values.help === true) {
    say(USAGE);
    return;
  }
  const stackFile = resolve(values["stack-file"]);
  const verbs: Record<string, () => Promise<void> | void> = {
    up: () => up(stackFile),
    down,
    status,
    key,
  };
  const action = verbs[verb];
  if (action === undefined || rest.length > 0) {
    console.error(`keel local: unknown command "${positionals.join(" ")}"\n${USAGE}`);
    process.exit(2);
  }
  await action();
}

main().catch((err: unknown) => {
  console.error(`keel local: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
