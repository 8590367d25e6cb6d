// `npm run check`: the stack file validated offline with the rules `pulumi up` applies, plus the
// secrets and provider tokens it needs. The exit status is checked on the real CLI in a child
// process; the other cases call the same function in this process.
import { runCommand, type Run } from "../support/run";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { runCheck } from "../../tools/check";

const ROOT = join(__dirname, "..", "..");

/** The environment without any provider token, so only the stack file counts. */
const NO_TOKENS: Record<string, string | undefined> = Object.fromEntries(
  Object.entries(process.env).filter(
    ([name]) =>
      !["DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN", "CLOUDFLARE_API_TOKEN"].includes(name),
  ),
);

/** A stack file a newcomer could have written: every value set, secrets encrypted. */
const GOOD = `config:
  keel:domain: keel-ci.dev
  keel:cloudflareZoneId: 0123456789abcdef0123456789abcdef
  keel:cloudflareAccountId: fedcba9876543210fedcba9876543210
  keel:sshPublicKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeelCheckTestKey keel@ci
  keel:sshPrivateKey:
    secure: v1:bm90LXJlYWxseS1lbmNyeXB0ZWQ=
  keel:sshAllowCidrs:
    - 85.10.197.7/32
  keel:acmeEmail: ops@keel-ci.dev
  keel:volumeSizeGb: 20
  digitalocean:token:
    secure: v1:bm90LXJlYWxseS1lbmNyeXB0ZWQ=
  cloudflare:apiToken:
    secure: v1:bm90LXJlYWxseS1lbmNyeXB0ZWQ=
`;

function checkCli(...args: string[]): Promise<Run> {
  return runCommand(process.execPath, ["--import", "tsx", "tools/check.ts", ...args], {
    cwd: ROOT,
    env: NO_TOKENS,
  });
}

describe("npm run check", () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "keel-check-"));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes Pulumi.<stack>.yaml into the temporary project directory; returns its path. */
  const stackFile = (stack: string, text: string): string => {
    const path = join(dir, `Pulumi.${stack}.yaml`);
    writeFileSync(path, text);
    return path;
  };

  /** Checks a stack of the temporary project directory. */
  const check = (stack: string, environment = NO_TOKENS) =>
    runCheck(["--stack", stack], environment, dir);

  it("when the unedited staging file is checked, then every problem gets one line and it exits 1", async () => {
    const run = await checkCli("--stack", "staging");
    expect(run.status).to.equal(1);
    expect(run.stderr).to.equal("");
    expect(run.stdout.trimEnd().split("\n")).to.deep.equal([
      "✘ keel:domain example.com is a documentation-only domain (RFC 2606) that no one can own: set the domain of the Cloudflare zone you own",
      '✘ keel:cloudflareZoneId is still the placeholder "<your-cloudflare-zone-id>": replace it with your real value',
      '✘ keel:cloudflareAccountId is still the placeholder "<your-cloudflare-account-id>": replace it with your real value',
      '✘ keel:sshPublicKey is still the placeholder "<your-ssh-public-key, e.g. the contents of ~/.ssh/keel_ed25519.pub>": replace it with your real value',
      "✘ keel:sshAllowCidrs contains 203.0.113.7/32, a documentation-only address (RFC 5737) that no machine has: list the public address of the machine that runs `pulumi up`",
      "✘ keel:acmeEmail ops@example.com cannot receive mail: example.com is a documentation-only domain (RFC 2606) that no one can own, and Let's Encrypt refuses such addresses; give an address whose mail you read",
      "✘ keel:sshPrivateKey is required: Pulumi provisions the server over SSH with it; set it with `pulumi config set --secret keel:sshPrivateKey < ~/.ssh/keel_ed25519`",
      "✘ digitalocean:token is required: DigitalOcean creates the droplet and the uptime check with it; set it with `pulumi config set --secret digitalocean:token` (or export DIGITALOCEAN_TOKEN)",
      "✘ cloudflare:apiToken is required: Cloudflare creates the DNS records and the R2 bucket with it; set it with `pulumi config set --secret cloudflare:apiToken` (or export CLOUDFLARE_API_TOKEN)",
      "config for stack staging has 9 problems (Pulumi.staging.yaml): fix them and run the check again",
    ]);
  });

  it("when a good stack file is given with --file, then it says what pulumi up would create and exits 0", async () => {
    const path = stackFile("ci", GOOD);
    const run = await checkCli("--stack", "ci", "--file", path);
    expect(run.stderr).to.equal("");
    expect(run.stdout.trimEnd().split("\n")).to.deep.equal([
      "pulumi up --stack ci would create:",
      "  API      https://api.keel-ci.dev (2 instances)",
      "  server   droplet s-1vcpu-2gb in fra1 (Debian 13), reserved IP, firewall: SSH from 1 CIDR",
      "  volume   keel-ci-data, 20 GB",
      "  bucket   keel-ci-evidence (R2)",
      "  destroy  the volume and the bucket are kept",
      "config for stack ci is ready",
    ]);
    expect(run.status).to.equal(0);
  });

  it("when the stack has an existing host, then the summary names it and no volume", () => {
    stackFile("byo", GOOD.replace("config:\n", "config:\n  keel:existingHost: 49.13.87.210\n"));
    const run = check("byo");
    expect(run.status).to.equal(0);
    expect(run.stdout).to.include(
      "  server   existing host 49.13.87.210 (no droplet, firewall, volume or reserved IP)",
    );
    expect(run.stdout).to.include("  volume   none: the data stays on the host's disk");
  });

  it("when the stack file has a YAML slip, then the line names the file, line and column", () => {
    const path = stackFile("slip", GOOD.replace("  keel:acmeEmail:", " keel:acmeEmail:"));
    const run = check("slip");
    expect(run.status).to.equal(1);
    expect(run.stdout).to.deep.equal([
      `✘ ${path}:10:1: not valid YAML: All mapping items must start at the same column`,
    ]);
  });

  it("when the stack file does not exist, then the line names its path and how to create it", () => {
    const run = check("qa");
    expect(run.status).to.equal(1);
    expect(run.stdout).to.deep.equal([
      `✘ ${join(dir, "Pulumi.qa.yaml")} does not exist. Create stack qa with \`pulumi stack init qa\`, then copy the keel: keys of Pulumi.staging.yaml into Pulumi.qa.yaml and put in your values (or set them one by one: \`pulumi config set --stack qa keel:domain <your domain>\`)`,
    ]);
  });

  it("when --stack prod has no stack file in the project, then the CLI says how to create it and exits 1", async () => {
    const run = await checkCli("--stack", "prod");
    expect(run.status).to.equal(1);
    expect(run.stdout).to.include(`✘ ${join(ROOT, "Pulumi.prod.yaml")} does not exist.`);
    expect(run.stdout).to.include("`pulumi stack init prod`");
  });

  it("when keys are misspelled, then each is refused with the key it was meant to be", () => {
    stackFile(
      "typos",
      GOOD.replace("config:\n", "config:\n  keel:apiInstance: 4\n  keel:volumSizeGb: 50\n"),
    );
    const run = check("typos");
    expect(run.status).to.equal(1);
    expect(run.stdout.slice(0, 2)).to.deep.equal([
      "✘ keel:apiInstance is not a Keel setting: did you mean keel:apiInstances? Rename the key in the stack file (or `pulumi config rm keel:apiInstance`, then set keel:apiInstances)",
      "✘ keel:volumSizeGb is not a Keel setting: did you mean keel:volumeSizeGb? Rename the key in the stack file (or `pulumi config rm keel:volumSizeGb`, then set keel:volumeSizeGb)",
    ]);
    expect(run.stdout).to.have.length(3);
  });

  it("when the stack rotates one secret with secretGenerations, then check accepts it and refuses a misspelled field", () => {
    stackFile(
      "rotate",
      GOOD.replace("config:\n", "config:\n  keel:secretGenerations:\n    jwt: 2\n"),
    );
    const good = check("rotate", { DIGITALOCEAN_TOKEN: "dop_v1_x", CLOUDFLARE_API_TOKEN: "cf" });
    expect(good.stdout.at(-1)).to.equal("config for stack rotate is ready");
    expect(good.status).to.equal(0);
    stackFile(
      "rotate-typo",
      GOOD.replace("config:\n", "config:\n  keel:secretGenerations:\n    jwtSecret: 2\n"),
    );
    const typo = check("rotate-typo");
    expect(typo.status).to.equal(1);
    expect(typo.stdout[0]).to.include('keel:secretGenerations has an unknown field "jwtSecret"');
  });

  it("when the provider tokens are in the environment instead, then the stack is ready", () => {
    stackFile("env", GOOD.replace(/ {2}(digitalocean|cloudflare):\w+:\n {4}secure: .*\n/g, ""));
    expect(check("env").stdout.slice(0, -1).join("\n")).to.include("digitalocean:token");
    const run = check("env", { DIGITALOCEAN_TOKEN: "dop_v1_x", CLOUDFLARE_API_TOKEN: "cf" });
    expect(run.stdout.at(-1)).to.equal("config for stack env is ready");
    expect(run.status).to.equal(0);
  });

  it("when a plain setting is encrypted in the stack file, then it is refused: it cannot be checked", () => {
    stackFile(
      "sealed",
      GOOD.replace("keel:volumeSizeGb: 20", "keel:volumeSizeGb:\n    secure: v1:x"),
    );
    const run = check("sealed");
    expect(run.status).to.equal(1);
    expect(run.stdout[0]).to.equal(
      "✘ keel:volumeSizeGb is encrypted (secure:) in Pulumi.sealed.yaml, so it cannot be checked offline; it is not a secret: set it in plain text with `pulumi config set --stack sealed keel:volumeSizeGb <value>`",
    );
  });

  for (const flag of ["--help", "-h"]) {
    it(`when run with ${flag}, then it prints the usage and exits 0`, async () => {
      const run = await checkCli(flag);
      expect(run.status).to.equal(0);
      expect(run.stdout).to.match(/^usage: npm run check -- --stack NAME \[--file PATH\]\n/);
      expect(run.stderr).to.equal("");
    });
  }

  it("when the command line is wrong, then it says why, prints the usage and exits 2", () => {
    for (const args of [[], ["--stack", "ci", "--no-such-option"]]) {
      const run = runCheck(args, NO_TOKENS, dir);
      expect(run.status).to.equal(2);
      expect(run.stderr[1]).to.match(/^usage: npm run check/);
      expect(run.stdout).to.deep.equal([]);
    }
  });
});
