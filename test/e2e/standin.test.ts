// Smoke tests of the stand-in harness itself: it boots a real Debian 13 with systemd, runs
// commands over SSH as remote.Command does, serves ACME and S3 beside the guest, survives a
// reboot, and leaves nothing behind when it stops.
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { get as httpGet } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootStandin, SshTransportError, type Standin } from "../../local/standin";
import { runSsh } from "../../local/ssh";

const PROBE_PORT = 8080;

function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmdline.includes(text)) found.push(`${entry}: ${cmdline}`);
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

function cgroupsNamed(name: string): string[] {
  const roots = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"];
  return roots.map((root) => join(root, name)).filter((path) => existsSync(path));
}

function httpGetText(standin: Standin, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = httpGet({ host, port, path: "/", lookup: standin.lookup }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    });
    request.setTimeout(10_000, () => request.destroy(new Error(`GET ${host}:${port} timed out`)));
    request.on("error", reject);
  });
}

function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error("no TCP address"));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

describe("the stand-in harness", function () {
  let standin: Standin;

  before(async function () {
    standin = await bootStandin({ forwardPorts: [PROBE_PORT] });
  });

  after(async function () {
    if (standin) await standin.stop();
  });

  it("when the stand-in boots, then systemd is running as PID 1 and SSH answers", async function () {
    expect(standin.systemState).to.be.oneOf(["running", "degraded"]);
    const result = await standin.ssh(
      "ps -o comm= -p 1; systemd-detect-virt --container; . /etc/os-release; echo $VERSION_CODENAME; systemctl is-system-running",
    );
    expect(result.code, result.stderr).to.equal(0);
    const [pid1, virt, codename, state] = result.stdout.trim().split("\n");
    expect(pid1).to.equal("systemd");
    expect(virt).to.equal("systemd-nspawn");
    expect(codename).to.equal("trixie");
    expect(state).to.be.oneOf(["running", "degraded"]);
  });

  it("when a command fails, then its exit code and both output streams come back", async function () {
    const result = await standin.ssh(
      'cd /tmp && x="$(pwd)" && echo "out $x" && echo err >&2; exit 42',
    );
    expect(result).to.deep.equal({ code: 42, stdout: "out /tmp\n", stderr: "err\n" });
  });

  it("when SSH cannot reach the host, then the call throws instead of returning a code", async function () {
    const target = { ...standin.sshTarget, port: await closedPort() };
    let caught: unknown;
    try {
      await runSsh(target, "true");
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(SshTransportError);
  });

  it("when stdin is piped, then the remote command receives it byte for byte", async function () {
    const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const data = Buffer.concat([allBytes, randomBytes(2 * 1024 * 1024), allBytes]);
    const result = await standin.ssh(
      "cat >/tmp/stdin.bin && sha256sum </tmp/stdin.bin && stat -c %s /tmp/stdin.bin",
      { stdin: data },
    );
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout.split(/\s+/).filter(Boolean)).to.deep.equal([
      sha256(data),
      "-",
      String(data.length),
    ]);
  });

  it("when a file is copied, then it arrives whole with the mode CopyToRemote gives a new file", async function () {
    const dir = mkdtempSync(join(tmpdir(), "keel-standin-test-"));
    try {
      const local = join(dir, "secret.env");
      const content = `KEY=${randomBytes(32).toString("hex")}\n`;
      writeFileSync(local, content);
      chmodSync(local, 0o600);
      await standin.copyFile(local, "/root/copied.env");
      await standin.copyFile(local, "/tmp");
      const result = await standin.ssh(
        "stat -c '%a %s' /root/copied.env; sha256sum </root/copied.env; sha256sum </tmp/secret.env",
      );
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stdout).to.equal(
        `644 ${content.length}\n${sha256(content)}  -\n${sha256(content)}  -\n`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("when a guest service listens on a forwarded port, then the host reaches it by name", async function () {
    const probe = [
      "#!/bin/bash",
      "while IFS= read -r line && [[ -n \"${line%$'\\r'}\" ]]; do :; done",
      "printf 'HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nhello from %s\\n' \"$(hostname)\"",
      "",
    ].join("\n");
    const started = await standin.ssh(
      "cat >/usr/local/bin/keel-probe && chmod 0755 /usr/local/bin/keel-probe && " +
        `systemd-run --quiet --unit=keel-probe systemd-socket-activate --inetd -a -l ${PROBE_PORT} /usr/local/bin/keel-probe && ` +
        `timeout 10 sh -c 'until ss -Hltn "sport = :${PROBE_PORT}" | grep -q .; do sleep 0.1; done'`,
      { stdin: probe },
    );
    expect(started.code, started.stderr).to.equal(0);
    const body = await httpGetText(standin, "probe.standin.test", standin.hostPort(PROBE_PORT));
    expect(body).to.equal("hello from standin\n");
  });

  it("when the guest asks pebble's directory, then it answers over TLS the guest trusts", async function () {
    const result = await standin.ssh(`curl -fsS ${standin.acmeDirectory}`);
    expect(result.code, result.stderr).to.equal(0);
    const directory = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(directory).to.include.keys("newAccount", "newNonce", "newOrder");
  });

  it("when certbot in the guest orders a certificate, then pebble validates HTTP-01 against the guest and the chain ends at acmeRootPem()", async function () {
    const install = await standin.ssh(
      "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends certbot",
    );
    expect(install.code, install.stderr).to.equal(0);
    const issue = await standin.ssh(
      `certbot certonly --standalone --non-interactive --agree-tos --register-unsafely-without-email --server ${standin.acmeDirectory} -d ${standin.domain}`,
    );
    expect(issue.code, issue.stdout + issue.stderr).to.equal(0);
    const fullchain = await standin.ssh(
      `cat /etc/letsencrypt/live/${standin.domain}/fullchain.pem`,
    );
    const chain = pemBlocks(fullchain.stdout).map((pem) => new X509Certificate(pem));
    const root = new X509Certificate(await standin.acmeRootPem());
    expect(chain.length).to.be.greaterThan(1);
    expect(chain[0]?.subjectAltName).to.include(`DNS:${standin.domain}`);
    chain.forEach((cert, i) => {
      const issuer = chain[i + 1] ?? root;
      expect(cert.verify(issuer.publicKey), `certificate ${i} is signed by the next`).to.be.true;
    });
    expect(root.ca).to.be.true;
  });

  it("when an object is PUT from the host, then the guest reads it from the same signed endpoint", async function () {
    const { endpoint, region, bucket, accessKeyId, secretAccessKey } = standin.s3;
    const client = new S3Client({
      endpoint,
      region,
      credentials: { accessKeyId, secretAccessKey },
      forcePathStyle: true,
    });
    try {
      const body = randomBytes(256 * 1024);
      const Key = "probe/bytes.bin";
      await client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: body }));
      const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key }), {
        expiresIn: 300,
      });
      expect(new URL(url).host).to.equal(new URL(endpoint).host);
      const read = await standin.ssh(`curl -fsS '${url}' | sha256sum`);
      expect(read.code, read.stderr).to.equal(0);
      expect(read.stdout).to.equal(`${sha256(body)}  -\n`);
    } finally {
      client.destroy();
    }
  });

  it("when the stand-in reboots, then it comes back with its disk and SSH answers again", async function () {
    const before = await standin.ssh(
      "echo kept >/root/reboot-marker && cat /proc/sys/kernel/random/boot_id",
    );
    expect(before.code, before.stderr).to.equal(0);
    await standin.reboot();
    const after = await standin.ssh(
      "cat /proc/sys/kernel/random/boot_id /root/reboot-marker && systemctl is-system-running",
    );
    const [bootId, marker, state] = after.stdout.trim().split("\n");
    expect(bootId).to.match(/^[0-9a-f-]{36}$/);
    expect(bootId).to.not.equal(before.stdout.trim());
    expect(marker).to.equal("kept");
    expect(state).to.be.oneOf(["running", "degraded"]);
  });

  it("when the stand-in stops, then no namespace, process, mount or cgroup is left", async function () {
    const { runDir, namespace } = standin;
    const ports = [
      standin.hostPort(22),
      standin.hostPort(80),
      Number(new URL(standin.s3.endpoint).port),
    ];
    expect(processesMentioning(runDir)).to.not.be.empty;
    await standin.stop();
    await standin.stop();
    expect(existsSync(runDir), runDir).to.be.false;
    expect(existsSync(`/run/netns/${namespace}`)).to.be.false;
    expect(existsSync(`/etc/netns/${namespace}`)).to.be.false;
    expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).to.not.include(namespace);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).to.not.include(namespace);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).to.not.include(runDir);
    expect(processesMentioning(runDir)).to.deep.equal([]);
    expect(processesMentioning(namespace)).to.deep.equal([]);
    expect(cgroupsNamed(namespace)).to.deep.equal([]);
    const listening = execFileSync("ss", ["-Hltn"], { encoding: "utf8" });
    for (const port of ports)
      expect(listening).to.not.match(new RegExp(`127\\.0\\.0\\.1:${port}\\s`));
  });
});
