// The check that the server answers SSH from the machine running `pulumi up`, against throwaway
// servers on 127.0.0.1, and run as the reach command runs it: a process reading JSON on stdin.
import { runCommand } from "../support/run";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { expect } from "chai";
import {
  probeSsh,
  REACH_COMMAND,
  reachMessage,
  type ReachOutcome,
  type ReachRequest,
} from "../../provisioning/reach";

const ROOT = join(__dirname, "..", "..");
const BANNER = "SSH-2.0-OpenSSH_10.0p2 Debian-7";

/** A server on a random port of 127.0.0.1 that does `onConnection` with each client. */
async function listen(onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

const portOf = (server: Server) => (server.address() as AddressInfo).port;

/** A port nothing listens on: one a server had a moment ago. */
async function closedPort(): Promise<number> {
  const server = await listen(() => undefined);
  const port = portOf(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function request(port: number, overrides: Partial<ReachRequest> = {}): ReachRequest {
  return {
    host: "127.0.0.1",
    port,
    timeoutSeconds: 2,
    sshAllowCidrs: ["85.10.197.7/32"],
    existingHost: false,
    ...overrides,
  };
}

/** Runs the command as the reach command does, from the project directory. */
const runReach = (input: unknown) =>
  runCommand("sh", ["-c", REACH_COMMAND], { cwd: ROOT, stdin: JSON.stringify(input) });

describe("checking that the server answers SSH", function () {
  this.timeout(30_000);
  const servers: Server[] = [];
  const clients: Socket[] = [];

  /** An SSH server as far as the probe looks: one line before its identification line. */
  const sshServer = async () => {
    const server = await listen((socket) => socket.end(`Welcome\r\n${BANNER}\r\n`));
    servers.push(server);
    return server;
  };

  after(async () => {
    for (const client of clients) client.destroy();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it("when the server sends an SSH banner, then the probe succeeds with that banner", async () => {
    const port = portOf(await sshServer());
    const outcome = await probeSsh(request(port));
    expect(outcome).to.deep.equal({ reached: true, banner: BANNER });
    expect(reachMessage(request(port), outcome)).to.equal(
      `keel: 127.0.0.1:${port} answers SSH (${BANNER})`,
    );
  });

  it("when nothing listens on the port, then the probe fails within its timeout, naming keel:sshAllowCidrs and the address", async () => {
    const port = await closedPort();
    const started = Date.now();
    const outcome = await probeSsh(request(port));
    expect(Date.now() - started).to.be.below(3000);
    expect(outcome).to.include({ reached: false, kind: "refused" });
    const message = reachMessage(request(port), outcome);
    expect(message).to.include(`could not reach 127.0.0.1:${port} over SSH within 2 s`);
    expect(message).to.include("ECONNREFUSED");
    expect(message).to.include("no SSH server listens on that port");
    expect(message).to.include("inside keel:sshAllowCidrs (85.10.197.7/32)?");
    expect(message).to.include(
      "`pulumi config set --path 'keel:sshAllowCidrs[1]' <address>/32`, then run pulumi up again.",
    );
  });

  it("when the server accepts but never sends a banner, then the probe fails after its timeout, saying no banner arrived", async () => {
    const silent = await listen((socket) => clients.push(socket));
    servers.push(silent);
    const port = portOf(silent);
    const started = Date.now();
    const outcome = await probeSsh(request(port));
    expect(Date.now() - started).to.be.within(1900, 4000);
    expect(outcome).to.include({ reached: false, kind: "no-banner" });
    expect(reachMessage(request(port), outcome)).to.include(
      "(last error: the connection opened, but no SSH banner arrived within 2 s)",
    );
  });

  it("when a connection times out on an existing host, then the message blames a firewall and names the host's own firewall and sshd", () => {
    const outcome: ReachOutcome = {
      reached: false,
      kind: "no-answer",
      detail: "connect timed out after 10 s",
    };
    const existing = request(22, {
      host: "2001:db8::7",
      timeoutSeconds: 120,
      existingHost: true,
      sshAllowCidrs: ["85.10.197.7/32", "2a02:8108:1d40::/48"],
    });
    const message = reachMessage(existing, outcome);
    expect(message).to.include("could not reach [2001:db8::7]:22 over SSH within 120 s");
    expect(message).to.include("a firewall on the way drops the connection");
    expect(message).to.include("`curl -6 -s https://ifconfig.me`");
    expect(message).to.include("'keel:sshAllowCidrs[2]' <address>/128");
    expect(message).to.include("the host's own firewall must let this machine in too");
    expect(message).to.include("sshd must run there and listen on port 22");
    expect(reachMessage({ ...existing, existingHost: false }, outcome)).not.to.include(
      "existingHost",
    );
  });

  it("when the command runs against an SSH server, then it prints the banner and exits 0", async () => {
    const port = portOf(await sshServer());
    const result = await runReach(request(port));
    expect(result.stderr).to.equal("");
    expect(result.status).to.equal(0);
    expect(result.stdout).to.equal(`keel: 127.0.0.1:${port} answers SSH (${BANNER})\n`);
  });

  it("when the command cannot reach SSH, then it exits 1 with one message naming keel:sshAllowCidrs", async () => {
    const port = await closedPort();
    const result = await runReach(request(port, { timeoutSeconds: 1, existingHost: true }));
    expect(result.status).to.equal(1);
    expect(result.stdout).to.equal("");
    expect(result.stderr.trimEnd().split("\n")).to.have.length(1);
    expect(result.stderr).to.match(
      new RegExp(`^keel: could not reach 127\\.0\\.0\\.1:${port} over SSH within 1 s `),
    );
    expect(result.stderr).to.include("keel:sshAllowCidrs (85.10.197.7/32)");
    expect(result.stderr).to.include("the host's own firewall");
  });

  it("when the request on stdin has no host, then the command fails saying so", async () => {
    const result = await runReach({ ...request(22), host: "" });
    expect(result.status).to.equal(1);
    expect(result.stderr).to.equal("keel: checking SSH failed: the request on stdin has no host\n");
  });
});
