// Runs on the machine running `pulumi up`, before the first step: proves that the server answers
// SSH from here, or fails within minutes naming the likely cause — most often, this machine's
// address is not inside keel:sshAllowCidrs. The provisioning component's reach command runs
// this with the request as JSON on stdin; it needs nothing beyond Node.js itself.
import { isIPv4, isIPv6, connect } from "node:net";

export interface ReachRequest {
  readonly host: string;
  readonly port: number;
  /** Keep trying until this many seconds have passed. */
  readonly timeoutSeconds: number;
  /** The configured keel:sshAllowCidrs, named in the failure message. */
  readonly sshAllowCidrs: readonly string[];
  /** keel:existingHost: the failure message also names the host's own firewall and sshd. */
  readonly existingHost: boolean;
}

/**
 * How an attempt failed. `no-answer`: the connection timed out, so a firewall drops it;
 * `refused`: the host answers, but nothing accepts connections on the port; `no-banner`: a
 * connection opened but no SSH identification line arrived; `unresolved`: the host name has no
 * address; `other`: any other network error.
 */
export type FailureKind = "no-answer" | "refused" | "no-banner" | "unresolved" | "other";

export type ReachOutcome =
  | { readonly reached: true; readonly banner: string }
  | { readonly reached: false; readonly kind: FailureKind; readonly detail: string };

/** One attempt may take this long; then the probe pauses before the next one. */
const ATTEMPT_SECONDS = 10;
const PAUSE_MS = 2000;
/** Servers may send other lines before their identification line, but not this much. */
const MAX_PREAMBLE_BYTES = 8192;

/**
 * The command line of the reach command, run from the project directory. Like the bucket
 * emptier's (infra/storage.ts), it needs only production dependencies: ts-node and typescript.
 */
export const REACH_COMMAND = "node --require ts-node/register/transpile-only provisioning/reach.ts";

function classify(err: NodeJS.ErrnoException): ReachOutcome {
  const detail = err.message;
  switch (err.code) {
    case "ECONNREFUSED":
      return { reached: false, kind: "refused", detail };
    case "ETIMEDOUT":
      return { reached: false, kind: "no-answer", detail };
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return { reached: false, kind: "unresolved", detail };
    default:
      return { reached: false, kind: "other", detail };
  }
}

/** One connection: resolves with the server's identification line, or why there is none. */
function attempt(host: string, port: number, seconds: number): Promise<ReachOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let connected = false;
    let received = "";
    let settled = false;
    const settle = (outcome: ReachOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      const waited = `${Number(seconds.toFixed(1))} s`;
      settle(
        connected
          ? {
              reached: false,
              kind: "no-banner",
              detail: `the connection opened, but no SSH banner arrived within ${waited}`,
            }
          : { reached: false, kind: "no-answer", detail: `connect timed out after ${waited}` },
      );
    }, seconds * 1000);
    socket.on("connect", () => {
      connected = true;
    });
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      const lines = received.split("\n").slice(0, -1);
      const banner = lines.find((line) => line.startsWith("SSH-"));
      if (banner !== undefined) {
        settle({ reached: true, banner: banner.replace(/\r$/, "") });
      } else if (received.length > MAX_PREAMBLE_BYTES) {
        settle({
          reached: false,
          kind: "no-banner",
          detail: `the connection opened and sent ${received.length} bytes, but no SSH banner`,
        });
      }
    });
    socket.on("error", (err: NodeJS.ErrnoException) => settle(classify(err)));
    socket.on("close", () =>
      settle({
        reached: false,
        kind: "no-banner",
        detail: "the connection opened, but closed before an SSH banner arrived",
      }),
    );
  });
}

/**
 * Tries to read the server's SSH identification line until `timeoutSeconds` have passed, each
 * attempt bounded by ATTEMPT_SECONDS. Resolves with the banner, or with the last failure.
 */
export async function probeSsh(request: ReachRequest): Promise<ReachOutcome> {
  const deadline = Date.now() + request.timeoutSeconds * 1000;
  for (;;) {
    const seconds = Math.min(ATTEMPT_SECONDS, (deadline - Date.now()) / 1000);
    const outcome = await attempt(request.host, request.port, seconds);
    if (outcome.reached || deadline - Date.now() <= PAUSE_MS) return outcome;
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
}

/** What a failure says about the path to the server, where it says something. */
const CAUSES: Partial<Record<FailureKind, string>> = {
  "no-answer": "Nothing answered: a firewall on the way drops the connection.",
  refused:
    "The host answered but refused the connection: no SSH server listens on that port, or a firewall rejects this machine.",
  "no-banner": "Whatever accepted it is not an SSH server, or the SSH server is stuck.",
};

/** The one line the reach command prints: the banner, or the cause and what to do. */
export function reachMessage(request: ReachRequest, outcome: ReachOutcome): string {
  const address = isIPv6(request.host)
    ? `[${request.host}]:${request.port}`
    : `${request.host}:${request.port}`;
  if (outcome.reached) return `keel: ${address} answers SSH (${outcome.banner})`;
  if (outcome.kind === "unresolved") {
    return `keel: could not resolve ${request.host} (${outcome.detail}): check keel:existingHost.`;
  }
  const curl = isIPv6(request.host) ? "curl -6" : isIPv4(request.host) ? "curl -4" : "curl";
  const prefix = isIPv6(request.host) ? "/128" : "/32";
  const parts = [
    `keel: could not reach ${address} over SSH within ${request.timeoutSeconds} s (last error: ${outcome.detail}).`,
    CAUSES[outcome.kind],
    `Provisioning needs SSH from this machine: is its public address inside keel:sshAllowCidrs (${request.sshAllowCidrs.join(", ")})?`,
    `Find it with \`${curl} -s https://ifconfig.me\` and add it: \`pulumi config set --path 'keel:sshAllowCidrs[${request.sshAllowCidrs.length}]' <address>${prefix}\`, then run pulumi up again.`,
  ];
  if (request.existingHost) {
    parts.push(
      `On keel:existingHost, the host's own firewall must let this machine in too, and sshd must run there and listen on port ${request.port}.`,
    );
  }
  return parts.filter((part) => part !== undefined).join(" ");
}

function parseRequest(text: string): ReachRequest {
  const value = JSON.parse(text) as Partial<ReachRequest>;
  if (typeof value.host !== "string" || value.host === "") {
    throw new Error("the request on stdin has no host");
  }
  for (const key of ["port", "timeoutSeconds"] as const) {
    const number = value[key];
    if (typeof number !== "number" || !(number > 0)) {
      throw new Error(`the request on stdin has no ${key}`);
    }
  }
  if (!Array.isArray(value.sshAllowCidrs)) {
    throw new Error("the request on stdin has no sshAllowCidrs");
  }
  if (typeof value.existingHost !== "boolean") {
    throw new Error("the request on stdin has no existingHost");
  }
  return value as ReachRequest;
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const request = parseRequest(Buffer.concat(chunks).toString("utf8"));
  const outcome = await probeSsh(request);
  if (outcome.reached) {
    console.log(reachMessage(request, outcome));
  } else {
    console.error(reachMessage(request, outcome));
    process.exitCode = 1;
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`keel: checking SSH failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
