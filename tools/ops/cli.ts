// `npm run ops -- [--stack NAME | --host ADDRESS | --local] <verb>`: operates a Keel server from
// the operator's machine with the operator key (keel:operatorKeys). The key can run keel-ops'
// fixed verbs on the server and nothing else; this command runs them over SSH and prints their
// answers for a person (or as they came, with --json and --raw).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { DASHBOARD_TARGET, OPERATOR_USER } from "../../provisioning/render/operator";
import { clientOptions, type SshTarget } from "../../local/ssh";
import { LOCAL_TARGET_FILE } from "./local-target";
import {
  prettyLogLine,
  problems,
  renderReleases,
  renderStatus,
  type ReleaseEntry,
  type ServerStatus,
} from "./render";

const USAGE = `usage: npm run ops -- [--stack NAME | --host ADDRESS | --local] [options] <verb>
  status [--json]        units, release, instances' readiness, certificate, disks, memory,
                         backups, restore drills and firing alerts, and the problems
                         among them; exits 1 when there is one
  releases [--json]      the API releases kept on the server, the active one marked
  logs SOURCE [--since 1h] [--lines 200] [--grep TEXT] [--follow] [--raw]
                         SOURCE: api nginx nginx-errors postgres redis backup ssh system
  dashboard [--listen PORT]
                         a tunnel to the server's metrics UI (Prometheus: graphs, alerts,
                         targets) at http://127.0.0.1:PORT/ (default 9090) until Ctrl-C
where:
  --stack NAME      the server of Pulumi stack NAME (asks \`pulumi stack output serverIp\`)
  --host ADDRESS    a server by address or name (e.g. one set as keel:existingHost)
  --local           the local platform of \`sudo npm run local\`
  --identity FILE   the operator's private key (default ~/.ssh/keel_operator; --local: its own)
  --port N          SSH port (default 22)`;

const LOCAL_DIR = process.env.KEEL_LOCAL_DIR ?? "/var/lib/keel-local";

class UsageError extends Error {}

interface Connection {
  readonly destination: string;
  readonly sshOptions: string[];
}

function connection(values: {
  stack?: string;
  host?: string;
  local?: boolean;
  identity?: string;
  port?: string;
}): Connection {
  const chosen = [values.stack, values.host, values.local === true ? "local" : undefined];
  if (chosen.filter((v) => v !== undefined).length !== 1) {
    throw new UsageError("name one server: --stack NAME, --host ADDRESS or --local");
  }
  if (values.local === true) {
    const file = join(LOCAL_DIR, LOCAL_TARGET_FILE);
    if (!existsSync(file)) {
      throw new Error(`the local platform is not running (no ${file}): sudo npm run local`);
    }
    const target = JSON.parse(readFileSync(file, "utf8")) as SshTarget;
    const withKey = { ...target, privateKeyPath: values.identity ?? target.privateKeyPath };
    return {
      destination: `${target.user}@${target.host}`,
      sshOptions: [...clientOptions(withKey), "-p", String(target.port), "-T"],
    };
  }
  let host = values.host;
  if (values.stack !== undefined) {
    const output = spawnSync("pulumi", ["stack", "output", "serverIp", "--stack", values.stack], {
      encoding: "utf8",
    });
    if (output.error !== undefined || output.status !== 0) {
      throw new Error(
        `could not read the server address of stack ${values.stack}: ${output.error?.message ?? output.stderr.trim()}`,
      );
    }
    host = output.stdout.trim();
  }
  const port = values.port ?? "22";
  if (!/^[1-9][0-9]{0,4}$/.test(port)) throw new UsageError(`--port wants a number, got ${port}`);
  return {
    destination: `${OPERATOR_USER}@${host ?? ""}`,
    sshOptions: [
      "-p",
      port,
      "-i",
      values.identity ?? join(homedir(), ".ssh", "keel_operator"),
      "-o",
      "IdentitiesOnly=yes",
      // The first connection learns the server's host key; a changed key is refused after.
      "-o",
      "StrictHostKeyChecking=accept-new",
      "-T",
      "-o",
      "BatchMode=yes",
      "-o",
      "ConnectTimeout=10",
      "-o",
      "LogLevel=ERROR",
    ],
  };
}

/** Runs one keel-ops request; resolves with its exit code, handing each output line to `line`. */
function keelOps(
  target: Connection,
  request: readonly string[],
  line: (text: string) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("ssh", [...target.sshOptions, target.destination, request.join(" ")], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    createInterface({ input: child.stdout }).on("line", line);
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(code ?? (signal === "SIGINT" ? 130 : 1)));
  });
}

async function collect(target: Connection, request: readonly string[]): Promise<string> {
  const lines: string[] = [];
  const code = await keelOps(target, request, (l) => lines.push(l));
  if (code !== 0) throw new Error(`keel-ops ${request[0]} exited ${code}`);
  return lines.join("\n");
}

const out = (text: string): boolean => process.stdout.write(text);

/**
 * Forwards 127.0.0.1:`listen` here to the metrics UI on the server (the only forwarding the
 * operator key allows) until the tunnel closes or Ctrl-C; no command runs on the server.
 */
function dashboard(target: Connection, listen: string): Promise<number> {
  if (!/^[1-9][0-9]{0,4}$/.test(listen) || Number(listen) > 65535) {
    throw new UsageError(`--listen wants a port number, got ${listen}`);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(
      "ssh",
      [
        ...target.sshOptions,
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-L",
        `127.0.0.1:${listen}:${DASHBOARD_TARGET}`,
        target.destination,
      ],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
    out(`metrics UI (Prometheus) at http://127.0.0.1:${listen}/ — Ctrl-C closes the tunnel\n`);
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(code ?? (signal === "SIGINT" ? 0 : 1)));
  });
}

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      stack: { type: "string" },
      host: { type: "string" },
      local: { type: "boolean" },
      identity: { type: "string" },
      port: { type: "string" },
      json: { type: "boolean" },
      raw: { type: "boolean" },
      since: { type: "string" },
      lines: { type: "string" },
      grep: { type: "string" },
      follow: { type: "boolean" },
      listen: { type: "string" },
    },
  });
  if (values.help === true) {
    out(`${USAGE}\n`);
    return 0;
  }
  const [verb, ...rest] = positionals;
  const target = connection(values);
  if (verb === "status" && rest.length === 0) {
    const status = JSON.parse(await collect(target, ["status"])) as ServerStatus;
    const found = problems(status);
    out(
      values.json === true
        ? `${JSON.stringify({ ...status, problems: found }, null, 2)}\n`
        : renderStatus(status),
    );
    return found.length === 0 ? 0 : 1;
  }
  if (verb === "releases" && rest.length === 0) {
    const releases = JSON.parse(await collect(target, ["releases"])) as ReleaseEntry[];
    out(
      values.json === true
        ? `${JSON.stringify(releases, null, 2)}\n`
        : renderReleases(releases, Math.floor(Date.now() / 1000)),
    );
    return 0;
  }
  if (verb === "logs" && rest.length === 1) {
    const request = ["logs", rest[0] as string];
    for (const option of ["since", "lines", "grep"] as const) {
      const value = values[option];
      if (value === undefined) continue;
      if (/\s/.test(value)) throw new UsageError(`--${option} takes one word, got "${value}"`);
      request.push(`--${option}`, value);
    }
    if (values.follow === true) request.push("--follow");
    const show = values.raw === true ? (l: string) => l : prettyLogLine;
    return keelOps(target, request, (l) => out(`${show(l)}\n`));
  }
  if (verb === "dashboard" && rest.length === 0) return dashboard(target, values.listen ?? "9090");
  throw new UsageError(`unknown command "${positionals.join(" ")}"`);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const usage = err instanceof UsageError;
    console.error(`keel ops: ${err instanceof Error ? err.message : String(err)}`);
    if (usage) console.error(USAGE);
    process.exitCode = usage ? 2 : 1;
  },
);
