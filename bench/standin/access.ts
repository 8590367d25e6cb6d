// What the stand-in benchmarks share: the running local platform (`sudo npm run local`), commands
// in it over SSH, the client (client.mjs) copied into it with the admin API key beside it, and
// timing a step.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { apiPort } from "../../provisioning/layout";
import { attachStandin, type ReadyEvent, type StandinAccess } from "../../local/standin";

/** Runs `action` and prints how long it took after `label`. */
export async function timed<T>(label: string, action: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await action();
  console.log(`${label.padEnd(34)} ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

/** API instance 1, as the client reaches it inside the stand-in. */
export const API_URL = `http://127.0.0.1:${apiPort(1)}`;
const STATE_DIR = process.env.KEEL_LOCAL_DIR ?? "/var/lib/keel-local";
const GUEST_DIR = "/root/keel-bench";

export interface Platform {
  readonly run: (command: string, stdin?: string) => Promise<string>;
  readonly psql: (sql: string) => Promise<string>;
  /** client.mjs with these arguments after the key file and API instance 1; its JSON answer. */
  readonly client: (args: string) => Promise<Record<string, unknown>>;
  /** Where the client finds pebble's root (the issuer of nginx's certificate). */
  readonly caFile: string;
  readonly close: () => Promise<void>;
}

export async function openPlatform(): Promise<Platform> {
  const state = JSON.parse(readFileSync(join(STATE_DIR, "state.json"), "utf8")) as {
    ready: ReadyEvent;
  };
  const standin: StandinAccess = attachStandin(state.ready);
  const run = async (command: string, stdin?: string) => {
    const result = await standin.ssh(command, { stdin, timeoutMs: 60 * 60_000 });
    if (result.code !== 0) throw new Error(`${command}: exit ${result.code}\n${result.stderr}`);
    return result.stdout.trim();
  };
  await run(`install -d -m 0700 ${GUEST_DIR}`);
  await standin.copyFile(join(__dirname, "client.mjs"), `${GUEST_DIR}/client.mjs`);
  await run(`install -m 0644 /dev/stdin ${GUEST_DIR}/ca.pem`, await standin.acmeRootPem());
  // The key travels on stdin into a 0600 file; the client reads it from there.
  await run(
    `install -m 0600 /dev/stdin ${GUEST_DIR}/api-key`,
    readFileSync(join(STATE_DIR, "admin-api-key"), "utf8"),
  );
  return {
    run,
    psql: (sql) => run("runuser -u postgres -- psql -d keel -v ON_ERROR_STOP=1 -qtA", sql),
    client: async (args) =>
      JSON.parse(
        await run(`node ${GUEST_DIR}/client.mjs ${GUEST_DIR}/api-key ${API_URL} ${args}`),
      ) as Record<string, unknown>,
    caFile: `${GUEST_DIR}/ca.pem`,
    close: async () => {
      await run(`rm -rf ${GUEST_DIR}`);
    },
  };
}
