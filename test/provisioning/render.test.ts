// Every file the steps install, rendered through `npm run render`'s own function and compared
// byte for byte with the golden copies under golden/. After an intended change, regenerate
// them with `KEEL_UPDATE_GOLDEN=1 npm run test:provisioning` and review the diff.
import {
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { expect } from "chai";
import { loadConfig } from "../../api/src/config";
import { ConfigError } from "../../infra/config-rules";
import { STEP_NAMES } from "../../provisioning/steps";
import { renderStack } from "../../tools/render";

const GOLDEN = join(__dirname, "golden");
const STACK_FILE = join(__dirname, "fixtures", "Pulumi.golden.yaml");

/** The step scripts are rendered as they are in provisioning/scripts: no golden copies of those. */
const SCRIPTS = "_keel/steps/";

function tree(root: string, dir = root): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? tree(root, path) : [relative(root, path)];
    })
    .filter((path) => !path.startsWith(SCRIPTS))
    .sort();
}

describe("rendered files", () => {
  let out: string;
  let written: string[];

  before(() => {
    out = mkdtempSync(join(tmpdir(), "keel-render-"));
    written = renderStack("golden", STACK_FILE, out);
    if (process.env.KEEL_UPDATE_GOLDEN === "1") {
      rmSync(GOLDEN, { recursive: true, force: true });
      cpSync(out, GOLDEN, { recursive: true, filter: (src) => !src.includes(`/${SCRIPTS}`) });
    }
  });

  after(() => rmSync(out, { recursive: true, force: true }));

  const read = (path: string): string => readFileSync(join(out, path), "utf8");

  it("when the golden stack is rendered, then the same files as the golden copies come out", () => {
    expect(tree(out)).to.deep.equal(tree(GOLDEN));
    expect(written.filter((path) => !path.startsWith(SCRIPTS)).sort()).to.deep.equal(tree(GOLDEN));
    expect(written.filter((path) => path.startsWith(SCRIPTS))).to.have.length(
      STEP_NAMES.length + 1,
    );
  });

  it("when the golden stack is rendered, then every file equals its golden copy byte for byte", () => {
    for (const path of tree(GOLDEN)) {
      expect(read(path), path).to.equal(readFileSync(join(GOLDEN, path), "utf8"));
    }
  });

  it("when nginx is rendered, then TLS is 1.2/1.3 only with HTTP/2, HSTS and the configured limits", () => {
    const tls = read("etc/nginx/keel.d/10-tls.conf");
    expect(tls).to.match(/^ssl_protocols TLSv1\.2 TLSv1\.3;$/m);
    const https = read("etc/nginx/keel.d/50-https.conf");
    expect(https).to.match(/^\thttp2 on;$/m);
    expect(https).to.match(/location = \/metrics \{\n\t\treturn 404 /);
    expect(read("etc/nginx/snippets/keel-headers.conf")).to.include(
      'add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;',
    );
    const limits = read("etc/nginx/keel.d/20-limits.conf");
    expect(limits).to.include("zone=keel_auth:10m rate=6r/m;");
    expect(limits).to.include("zone=keel_api:10m rate=10r/s;");
    expect(limits).to.match(/^client_max_body_size 1m;$/m);
    expect(https).to.include("limit_req zone=keel_auth burst=5 nodelay;");
    expect(https).to.include("limit_req zone=keel_api burst=20 nodelay;");
    expect(https).to.match(/location = \/health \{\n\t\tinclude [^\n]+\n\t\}/);
    expect(read("etc/nginx/nginx.conf")).to.match(/^\tserver_tokens off;$/m);
  });

  it("when a location sets its own error page, then it includes the shared error pages again", () => {
    const https = read("etc/nginx/keel.d/50-https.conf");
    const locations = https.split(/\n\tlocation /).slice(1);
    const withOwnErrorPage = locations.filter((l) => l.includes("error_page 429"));
    expect(withOwnErrorPage).to.have.length(2);
    for (const location of withOwnErrorPage) expect(location).to.include("keel-errors.conf;");
    expect(read("etc/nginx/snippets/keel-errors.conf")).to.include("error_page 413 @too_large;");
  });

  it("when nginx is rendered for three instances, then the upstream lists all three", () => {
    const upstream = read("etc/nginx/keel.d/30-upstream.conf");
    expect(upstream.match(/server 127\.0\.0\.1:300\d/g)).to.deep.equal([
      "server 127.0.0.1:3001",
      "server 127.0.0.1:3002",
      "server 127.0.0.1:3003",
    ]);
    expect(read("etc/nginx/snippets/keel-proxy.conf")).to.include(
      "proxy_next_upstream error http_503 non_idempotent;",
    );
  });

  it("when sshd is rendered, then only keys are accepted and forwarding is off", () => {
    const sshd = read("etc/ssh/sshd_config.d/00-keel.conf");
    for (const line of [
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "AllowUsers root keel-ops",
      "MaxAuthTries 3",
      "AllowTcpForwarding no",
      "X11Forwarding no",
    ]) {
      expect(sshd).to.match(new RegExp(`^${line}$`, "m"));
    }
  });

  it("when operators' keys are rendered, then each runs keel-ops only or tunnels to the metrics UI, and sshd forces the same for the account", () => {
    expect(read("etc/ssh/keel-operator-keys").split("\n").slice(2)).to.deep.equal([
      'restrict,port-forwarding,permitopen="127.0.0.1:9090",command="/usr/local/sbin/keel-ops" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGoldenOperatorKeyForTestsOnly ops@golden',
      "",
    ]);
    const sshd = read("etc/ssh/sshd_config.d/00-keel.conf");
    // A Match block runs to the end of the file: it must be the last thing in it.
    const match = sshd
      .slice(sshd.indexOf("\nMatch User keel-ops\n") + 1)
      .trimEnd()
      .split("\n");
    expect(match).to.deep.equal([
      "Match User keel-ops",
      "\tAuthorizedKeysFile /etc/ssh/keel-operator-keys",
      "\tForceCommand /usr/local/sbin/keel-ops",
      "\tPermitTTY no",
      "\tPermitUserRC no",
      "\tAllowTcpForwarding local",
      "\tPermitOpen 127.0.0.1:9090",
      "\tPermitListen none",
      "\tAllowStreamLocalForwarding no",
      "\tAllowAgentForwarding no",
      "\tX11Forwarding no",
      "\tPermitTunnel no",
    ]);
    expect(read("etc/default/keel-ops")).to.match(/^API_HOST=api\.keel-ci\.dev$/m);
  });

  it("when the firewall is rendered, then SSH is open to the allowed CIDRs only", () => {
    const nft = read("etc/nftables.conf");
    expect(nft).to.include("elements = { 85.10.197.7/32 }");
    expect(nft).to.include("elements = { 2a02:8108:1d40::/48 }");
    expect(nft).to.match(/policy drop;/);
    expect(nft.match(/dport/g)).to.have.length(3);
  });

  it("when Postgres is rendered, then it listens locally, preloads TimescaleDB and is sized from memory", () => {
    const conf = read("etc/postgresql/17/main/conf.d/50-keel.conf");
    expect(conf).to.include("listen_addresses = 'localhost'");
    expect(conf).to.include("shared_preload_libraries = 'timescaledb'");
    expect(conf).to.include("password_encryption = 'scram-sha-256'");
    expect(conf).to.include("shared_buffers = '1024MB'");
    expect(read("etc/postgresql/17/main/pg_hba.conf")).not.to.match(/\b(trust|md5|password)\b/);
  });

  it("when Redis is rendered, then it binds loopback, keeps nothing on disk and stores only a hash", () => {
    const conf = read("etc/redis/redis.conf");
    expect(conf).to.match(/^bind 127\.0\.0\.1 -::1$/m);
    expect(conf).to.match(/^protected-mode yes$/m);
    expect(conf).to.match(/^maxmemory-policy volatile-ttl$/m);
    const acl = read("etc/redis/users.acl");
    expect(acl).to.match(/^user default off /m);
    expect(acl).to.match(/^user keel on #[0-9a-f]{64} .* -@dangerous/m);
    expect(acl).not.to.include("RENDERED-PLACEHOLDER");
  });

  it("when the API unit is rendered, then it reads the env file and keeps V8's JIT working", () => {
    const unit = read("etc/systemd/system/keel-api@.service");
    expect(unit).to.include("EnvironmentFile=/etc/keel/api.env");
    expect(unit).to.include("Restart=always");
    expect(unit).not.to.include("MemoryDenyWriteExecute");
    expect(unit).not.to.include("RENDERED-PLACEHOLDER");
    expect(read("etc/keel/api.env")).to.include(
      "BOOTSTRAP_API_KEY=RENDERED-PLACEHOLDER-admin-api-key-not-a-secret",
    );
  });

  /** Renders the golden stack file with `edit` applied to its text. */
  const renderEdited = (name: string, edit: (text: string) => string): string[] => {
    const file = join(out, `Pulumi.${name}.yaml`);
    writeFileSync(file, edit(readFileSync(STACK_FILE, "utf8")));
    return renderStack(name, file, join(out, name));
  };

  it("when a stack file holds an invalid value, then rendering fails with the config error", () => {
    expect(() =>
      renderEdited("bad", (text) => text.replace("https://app.keel-ci.dev", '"*"')),
    ).to.throw(ConfigError, /keel:frontendOrigins contains \*/);
  });

  it("when a stack file misspells a key, then rendering refuses it as pulumi up does", () => {
    expect(() =>
      renderEdited("typo", (text) => text.replace("keel:apiInstances:", "keel:apiInstance:")),
    ).to.throw(
      ConfigError,
      /keel:apiInstance is not a Keel setting: did you mean keel:apiInstances\?/,
    );
  });

  it("when the unedited staging stack file is rendered, then its placeholders and documentation-only values are refused", () => {
    const staging = join(__dirname, "..", "..", "Pulumi.staging.yaml");
    let refused: unknown;
    try {
      renderStack("staging", staging, join(out, "staging"));
    } catch (err) {
      refused = err;
    }
    expect(refused).to.be.instanceOf(ConfigError);
    expect((refused as ConfigError).problems.map((p) => p.key)).to.deep.equal([
      "domain",
      "cloudflareZoneId",
      "cloudflareAccountId",
      "sshPublicKey",
      "sshAllowCidrs",
      "acmeEmail",
    ]);
  });

  it("when frontendOrigins is left out, then api.env has none and the API's schema accepts it", () => {
    renderEdited("no-origins", (text) =>
      text.replace("  keel:frontendOrigins:\n    - https://app.keel-ci.dev\n", ""),
    );
    const env = readFileSync(join(out, "no-origins", "etc/keel/api.env"), "utf8");
    expect(env).to.match(/^FRONTEND_ORIGINS=$/m);
    const variables = Object.fromEntries(
      env
        .split("\n")
        .filter((line) => /^[A-Z0-9_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );
    const loaded = loadConfig({ ...variables, PORT: "3001" });
    expect(loaded.ok ? [] : loaded.errors).to.deep.equal([]);
    expect(loaded.ok && loaded.config.frontendOrigins).to.deep.equal([]);
  });
});
