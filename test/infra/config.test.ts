// The stack configuration's validation, as pure functions: every bad value is refused with a
// message naming the key and the fix, and good values come out typed and normalised. The same
// functions judge `pulumi up` (the last tests run the program under mocks), `npm run check`
// and `npm run render`.
import { expect } from "chai";
import {
  checkCredentials,
  checkSettings,
  closestKey,
  ConfigError,
  DEFAULT_RATE_LIMITS,
  type ConfigProblem,
  isPlaceholder,
  LETS_ENCRYPT_DIRECTORY,
  normaliseCidr,
  parseSettings,
} from "../../infra/config-rules";
import { ProgramFailure, runProgram, stagingConfig } from "./program";

function problemsOf(overrides: Record<string, unknown>): string[] {
  return checkSettings({ ...stagingConfig(), ...overrides }).problems.map((p) => p.message);
}

describe("stack configuration", () => {
  it("when every required key is valid, then the settings come out typed with defaults", () => {
    const settings = parseSettings(stagingConfig());
    expect(settings.apiHost).to.equal("api.keel-ci.dev");
    expect(settings.region).to.equal("fra1");
    expect(settings.dropletSize).to.equal("s-1vcpu-2gb");
    expect(settings.memoryMb).to.equal(2048);
    expect(settings.acmeServer).to.equal(LETS_ENCRYPT_DIRECTORY);
    expect(settings.volumeSizeGb).to.equal(10);
    expect(settings.apiInstances).to.equal(2);
    expect(settings.secretsGeneration).to.equal(1);
    expect(settings.retainData).to.equal(true);
    expect(settings.allowSshFromAnywhere).to.equal(false);
    expect(settings.alertEmail).to.equal("ops@keel-ci.dev");
    expect(settings.sshUser).to.equal("root");
    expect(settings.existingHost).to.equal(undefined);
    expect(settings.rateLimits).to.deep.equal(DEFAULT_RATE_LIMITS);
    expect(settings.sshAllowCidrs).to.deep.equal(["85.10.197.7/32", "2a02:8108:1d40::/48"]);
  });

  it("when nothing is set, then every required key is named", () => {
    const keys = checkSettings({}).problems.map((p) => p.key);
    expect(keys).to.have.members([
      "domain",
      "cloudflareZoneId",
      "cloudflareAccountId",
      "sshPublicKey",
      "sshAllowCidrs",
      "acmeEmail",
    ]);
  });

  it("when several keys are wrong, then one error lists all of them", () => {
    const error = (() => {
      try {
        parseSettings({ ...stagingConfig(), region: "mars1", apiInstances: 0 });
      } catch (err) {
        return err;
      }
      throw new Error("parseSettings accepted a bad config");
    })();
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as ConfigError).message)
      .to.include("keel:region")
      .and.include("keel:apiInstances");
  });

  describe("sshAllowCidrs", () => {
    it("when it contains 0.0.0.0/0, then it is refused with the fix", () => {
      expect(problemsOf({ sshAllowCidrs: ["0.0.0.0/0"] })).to.deep.equal([
        "keel:sshAllowCidrs contains 0.0.0.0/0: SSH would be open to the world; list your own addresses, or set keel:allowSshFromAnywhere true",
      ]);
    });

    it("when it contains ::/0, then it is refused too", () => {
      expect(problemsOf({ sshAllowCidrs: ["::/0"] })[0]).to.include(
        "SSH would be open to the world",
      );
    });

    it("when allowSshFromAnywhere is true, then 0.0.0.0/0 is accepted", () => {
      const settings = parseSettings({
        ...stagingConfig(),
        sshAllowCidrs: ["0.0.0.0/0"],
        allowSshFromAnywhere: "true",
      });
      expect(settings.sshAllowCidrs).to.deep.equal(["0.0.0.0/0"]);
    });

    for (const bad of [
      "10.0.0.1/8",
      "300.1.1.1/32",
      "10.0.0.0/33",
      "2001:db8::1/32",
      "host/24",
      "1.2.3.4/",
    ]) {
      it(`when it contains the malformed "${bad}", then it is refused`, () => {
        expect(problemsOf({ sshAllowCidrs: [bad] })[0]).to.equal(
          `keel:sshAllowCidrs contains "${bad}", which is not a CIDR such as 203.0.113.7/32 or 2001:db8::/48 (host bits must be zero)`,
        );
      });
    }

    it("when an entry is a bare address, then it becomes a single-host CIDR", () => {
      expect(normaliseCidr("198.51.100.7")).to.equal("198.51.100.7/32");
      expect(normaliseCidr("2001:db8::7")).to.equal("2001:db8::7/128");
    });

    it("when it is empty, then it is refused", () => {
      expect(problemsOf({ sshAllowCidrs: [] })[0]).to.include(
        "keel:sshAllowCidrs must be a non-empty list",
      );
    });
  });

  describe("frontendOrigins", () => {
    it("when it contains *, then it is refused with the reason", () => {
      expect(problemsOf({ frontendOrigins: ["*"] })[0]).to.equal(
        "keel:frontendOrigins contains *: any website could call the API with its users' credentials; list your front ends' origins, e.g. https://app.example.com",
      );
    });

    it("when an origin is http, then it is refused", () => {
      expect(problemsOf({ frontendOrigins: ["http://app.example.com"] })).to.deep.equal([
        'keel:frontendOrigins contains "http://app.example.com": origins must use https',
      ]);
    });

    it("when an origin has a path, then it is refused", () => {
      expect(problemsOf({ frontendOrigins: ["https://app.example.com/login"] })[0]).to.include(
        "which is not an origin",
      );
    });

    it("when it is absent or an empty list, then the API has no browser front end", () => {
      const config = stagingConfig();
      delete config.frontendOrigins;
      expect(parseSettings(config).frontendOrigins).to.deep.equal([]);
      expect(parseSettings({ ...config, frontendOrigins: [] }).frontendOrigins).to.deep.equal([]);
      expect(parseSettings({ ...config, frontendOrigins: "[]" }).frontendOrigins).to.deep.equal([]);
    });

    it("when it is not a list, then it is refused", () => {
      expect(problemsOf({ frontendOrigins: 3 })).to.deep.equal([
        "keel:frontendOrigins must be a list of strings, got 3",
      ]);
    });
  });

  it("when the region is unknown, then the known ones are listed", () => {
    const [problem] = problemsOf({ region: "mars1" });
    expect(problem).to.match(
      /^keel:region "mars1" is not a known DigitalOcean region; use one of .*fra1/,
    );
  });

  it("when the droplet size is unknown, then the supported ones are listed", () => {
    const [problem] = problemsOf({ dropletSize: "s-64vcpu-9tb" });
    expect(problem).to.match(
      /^keel:dropletSize "s-64vcpu-9tb" is not a supported droplet size; use one of .*s-1vcpu-2gb/,
    );
  });

  describe("operatorKeys", () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKey ops@laptop";

    it("when no operator key is set, then there is none and no problem", () => {
      expect(parseSettings(stagingConfig()).operatorKeys).to.deep.equal([]);
    });

    it("when public key lines are listed, then they come out trimmed", () => {
      expect(
        parseSettings({ ...stagingConfig(), operatorKeys: [` ${key} `] }).operatorKeys,
      ).to.deep.equal([key]);
    });

    it("when an entry is not one public key line, then it is refused by name", () => {
      expect(
        problemsOf({ operatorKeys: [key, "-----BEGIN OPENSSH PRIVATE KEY-----"] }),
      ).to.deep.equal([
        'keel:operatorKeys contains "-----BEGIN OPENSSH PRIVATE KEY-----", which is not one OpenSSH public key line such as the contents of ~/.ssh/keel_operator.pub',
      ]);
      expect(problemsOf({ operatorKeys: [`${key}\nssh-ed25519 AAAAother`] })).to.have.length(1);
    });
  });

  describe("the release watch", () => {
    it("when nothing is set, then a new release is watched for 60 s and rolled back above 10 % errors or 3 times the latency", () => {
      expect(parseSettings(stagingConfig()).releaseWatch).to.deep.equal({
        seconds: 60,
        maxErrorRate: 0.1,
        maxLatencyFactor: 3,
      });
      const set = {
        ...stagingConfig(),
        releaseWatchSeconds: "0",
        releaseMaxErrorRate: "0.25",
        releaseMaxLatencyFactor: "5",
      };
      expect(parseSettings(set).releaseWatch).to.deep.equal({
        seconds: 0,
        maxErrorRate: 0.25,
        maxLatencyFactor: 5,
      });
    });

    it("when the window, the rate or the latency factor is out of range, then each is refused by name", () => {
      expect(
        problemsOf({
          releaseWatchSeconds: 901,
          releaseMaxErrorRate: 0,
          releaseMaxLatencyFactor: 1,
        }),
      ).to.deep.equal([
        "keel:releaseWatchSeconds must be a whole number from 0 to 900, got 901",
        "keel:releaseMaxErrorRate must be a share from 0.001 to 1 (0.1 is 10 %), got 0",
        "keel:releaseMaxLatencyFactor must be a whole number from 2 to 100, got 1",
      ]);
      expect(problemsOf({ releaseMaxErrorRate: "10%" })).to.have.length(1);
      // Smaller shares would reach the api step in exponent form (1e-7), which it refuses.
      expect(problemsOf({ releaseMaxErrorRate: 1e-7 })).to.have.length(1);
    });

    it("when keel:apiRelease is not a release id, then it is refused; when unset, the build is deployed", () => {
      expect(parseSettings(stagingConfig()).apiRelease).to.equal("");
      expect(problemsOf({ apiRelease: "latest" })).to.deep.equal([
        'keel:apiRelease must be the id of a release kept on the server (16 hex digits, as `npm run ops -- releases` lists them), got "latest"',
      ]);
    });
  });

  describe("placeholders", () => {
    for (const value of ["CHANGE_ME", "changeme", "your-zone-id", "<your-cloudflare-zone-id>"]) {
      it(`when a required key still holds "${value}", then it is refused as a placeholder`, () => {
        expect(isPlaceholder(value)).to.equal(true);
        expect(problemsOf({ cloudflareZoneId: value })).to.deep.equal([
          `keel:cloudflareZoneId is still the placeholder "${value}": replace it with your real value`,
        ]);
      });
    }

    it("when a value merely contains 'your' inside, then it is not a placeholder", () => {
      expect(isPlaceholder("flavoury.example.com")).to.equal(false);
    });
  });

  it("when a Cloudflare id is not 32 hex digits, then it is refused", () => {
    expect(problemsOf({ cloudflareAccountId: "abc" })[0]).to.include(
      "keel:cloudflareAccountId must be a 32-character hex id",
    );
  });

  it("when the domain is not a DNS name, then it is refused", () => {
    expect(problemsOf({ domain: "not a domain" })[0]).to.include("keel:domain must be a DNS zone");
  });

  it("when the ACME server is not https, then it is refused", () => {
    expect(problemsOf({ acmeServer: "http://acme.test/dir" })[0]).to.include(
      "keel:acmeServer must be the https URL of an ACME directory",
    );
  });

  it("when the email is malformed, then it is refused", () => {
    expect(problemsOf({ acmeEmail: "ops-at-example.com" })[0]).to.equal(
      'keel:acmeEmail must be an email address, got "ops-at-example.com"',
    );
  });

  it("when numbers are out of range, then the range is given", () => {
    expect(problemsOf({ apiInstances: 9 })[0]).to.equal(
      "keel:apiInstances must be a whole number from 1 to 8, got 9",
    );
    expect(problemsOf({ volumeSizeGb: "ten" })[0]).to.include(
      "keel:volumeSizeGb must be a whole number",
    );
  });

  it("when rateLimits has an unknown field or a bad value, then both are named", () => {
    const problems = problemsOf({ rateLimits: { edgeAuthPerMinute: 0, burst: 3 } });
    expect(problems).to.have.length(2);
    expect(problems.join("\n")).to.include("field edgeAuthPerMinute must be a whole number");
    expect(problems.join("\n")).to.include('unknown field "burst"');
  });

  it("when rateLimits overrides one field, then the others keep their defaults", () => {
    const settings = parseSettings({ ...stagingConfig(), rateLimits: { apiPerMinute: 100 } });
    expect(settings.rateLimits).to.deep.equal({ ...DEFAULT_RATE_LIMITS, apiPerMinute: 100 });
  });

  it("when secretGenerations is not set, then every secret's own generation is 1", () => {
    expect(parseSettings(stagingConfig()).secretGenerations).to.deep.equal({
      postgres: 1,
      redis: 1,
      jwt: 1,
      adminApiKey: 1,
      evidenceToken: 1,
      backupToken: 1,
    });
  });

  it("when secretGenerations bumps one secret (as JSON text too), then the others stay at 1", () => {
    for (const value of [{ jwt: 3 }, '{"jwt": 3}']) {
      const settings = parseSettings({ ...stagingConfig(), secretGenerations: value });
      expect(settings.secretGenerations).to.include({ jwt: 3, postgres: 1, backupToken: 1 });
    }
  });

  it("when secretGenerations has an unknown field or a bad value, then both are named", () => {
    const problems = problemsOf({ secretGenerations: { jwt: 0, postgresPassword: 2 } });
    expect(problems).to.have.length(2);
    expect(problems.join("\n")).to.include(
      "keel:secretGenerations field jwt must be a whole number from 1 to 1000000, got 0",
    );
    expect(problems.join("\n")).to.include(
      'unknown field "postgresPassword"; known fields: postgres, redis, jwt, adminApiKey, evidenceToken, backupToken',
    );
  });

  it("when existingHost is an address or a name, then it is accepted, else refused", () => {
    expect(
      parseSettings({ ...stagingConfig(), existingHost: "49.13.87.210" }).existingHost,
    ).to.equal("49.13.87.210");
    expect(
      parseSettings({ ...stagingConfig(), existingHost: "vm.keel-ci.dev" }).existingHost,
    ).to.equal("vm.keel-ci.dev");
    expect(problemsOf({ existingHost: "not a host!" })[0]).to.include("keel:existingHost must be");
  });

  describe("alert mail (keel:smtp, keel:smtpPassword)", () => {
    const SMTP = { host: "smtp.keel-ci.dev", from: "alerts@keel-ci.dev" };
    /** Problems with keel:smtp set to `smtp`, and keel:smtpPassword when `password`. */
    const smtpProblems = (smtp: unknown, password = false): ConfigProblem[] =>
      checkSettings({
        ...stagingConfig(),
        smtp,
        ...(password ? { smtpPassword: "set" } : {}),
      }).problems;

    it("when keel:smtp is not set, then there is no SMTP server and alerts go to alertEmail", () => {
      const settings = parseSettings(stagingConfig());
      expect(settings.smtp).to.equal(undefined);
      expect(settings.alertEmail).to.equal("ops@keel-ci.dev");
    });

    it("when keel:smtp gives only host and from (as JSON text too), then port is 587, requireTls true and username empty", () => {
      for (const smtp of [SMTP, JSON.stringify(SMTP)]) {
        expect(parseSettings({ ...stagingConfig(), smtp }).smtp).to.deep.equal({
          host: "smtp.keel-ci.dev",
          port: 587,
          username: "",
          from: "alerts@keel-ci.dev",
          requireTls: true,
        });
      }
    });

    it("when keel:smtp sets every field, then each is kept", () => {
      const smtp = {
        ...SMTP,
        host: "49.13.87.25",
        port: 465,
        username: "alerts",
        requireTls: false,
      };
      const settings = parseSettings({ ...stagingConfig(), smtp, smtpPassword: "set" });
      expect(settings.smtp).to.deep.equal({ ...smtp, from: "alerts@keel-ci.dev" });
    });

    for (const port of [0, 65536, 587.5, "submission"]) {
      it(`when keel:smtp's port is ${JSON.stringify(port)}, then the field and its range are named`, () => {
        expect(smtpProblems({ ...SMTP, port })).to.deep.equal([
          {
            key: "smtp",
            message: `keel:smtp field port must be a whole number from 1 to 65535, got ${JSON.stringify(port)}`,
          },
        ]);
      });
    }

    it("when keel:smtp's from is not an e-mail address, then it is refused", () => {
      expect(smtpProblems({ ...SMTP, from: "alerts.keel-ci.dev" })).to.deep.equal([
        {
          key: "smtp",
          message: 'keel:smtp field from must be an email address, got "alerts.keel-ci.dev"',
        },
      ]);
    });

    it("when keel:smtp lacks host and from, then each is required with the command that sets it", () => {
      expect(smtpProblems({ port: 25 }).map((p) => p.message)).to.deep.equal([
        "keel:smtp field host is required: set it with `pulumi config set --path 'keel:smtp.host' …`",
        "keel:smtp field from is required: set it with `pulumi config set --path 'keel:smtp.from' …`",
      ]);
    });

    it("when keel:smtp's host is neither a host name nor an address, then it is refused", () => {
      expect(smtpProblems({ ...SMTP, host: "smtp server" }).map((p) => p.message)).to.deep.equal([
        'keel:smtp field host must be the SMTP server\'s host name or IP address, got "smtp server"',
      ]);
    });

    it("when keel:smtp has an unknown field, then it is named with the known ones", () => {
      expect(smtpProblems({ ...SMTP, tls: true, password: "x" })).to.deep.equal([
        {
          key: "smtp",
          message:
            'keel:smtp has an unknown field "tls"; known fields: host, port, username, from, requireTls',
        },
        {
          key: "smtp",
          message:
            'keel:smtp has an unknown field "password"; known fields: host, port, username, from, requireTls',
        },
      ]);
    });

    it("when keel:smtpPassword is set without keel:smtp, then it is refused with both ways out", () => {
      expect(checkSettings({ ...stagingConfig(), smtpPassword: "set" }).problems).to.deep.equal([
        {
          key: "smtpPassword",
          message:
            "keel:smtpPassword is set, but keel:smtp is not, so no mail would be sent with it: set keel:smtp (`pulumi config set --path 'keel:smtp.host' …` and `--path 'keel:smtp.from' …`), or remove the password (`pulumi config rm keel:smtpPassword`)",
        },
      ]);
    });

    it("when keel:smtp has a username but keel:smtpPassword is not set, then the password is required, as a secret", () => {
      const smtp = { ...SMTP, username: "alerts" };
      expect(smtpProblems(smtp)).to.deep.equal([
        {
          key: "smtpPassword",
          message:
            'keel:smtpPassword is required with keel:smtp field username ("alerts"): set it with `pulumi config set --secret keel:smtpPassword …`, or remove the username if the server needs no login',
        },
      ]);
      expect(smtpProblems(smtp, true)).to.deep.equal([]);
    });
  });

  describe("unknown keys", () => {
    for (const [typo, meant] of [
      ["apiInstance", "apiInstances"],
      ["volumSizeGb", "volumeSizeGb"],
      ["domian", "domain"],
      ["sshallowcidrs", "sshAllowCidrs"],
    ] as const) {
      it(`when keel:${typo} is set, then it is refused with keel:${meant} suggested`, () => {
        expect(problemsOf({ [typo]: 4 })).to.deep.equal([
          `keel:${typo} is not a Keel setting: did you mean keel:${meant}? Rename the key in the stack file (or \`pulumi config rm keel:${typo}\`, then set keel:${meant})`,
        ]);
      });
    }

    it("when a key is close to no setting, then it is refused with the settings listed", () => {
      const [problem] = problemsOf({ favouriteColour: "blue" });
      expect(problem).to.match(
        /^keel:favouriteColour is not a Keel setting: remove it \(`pulumi config rm keel:favouriteColour`\); the settings are domain, apiSubdomain, .*alertEmail, smtp, rateLimits, releaseWatchSeconds, releaseMaxErrorRate, releaseMaxLatencyFactor, apiRelease, backupRetentionFull, backupLockDays, restore, adoptVolumeId, adoptBuckets, backupPassphrase, smtpPassword$/,
      );
      expect(closestKey("favouriteColour")).to.equal(undefined);
    });

    it("when the only keys are Keel's own, the secret one included, then none is unknown", () => {
      expect(checkSettings({ ...stagingConfig(), sshPrivateKey: "set" }).problems).to.deep.equal(
        [],
      );
    });
  });

  describe("documentation-only values", () => {
    it("when sshAllowCidrs holds an RFC 5737 address, then the message says why and what to list", () => {
      expect(problemsOf({ sshAllowCidrs: ["203.0.113.7/32"] })).to.deep.equal([
        "keel:sshAllowCidrs contains 203.0.113.7/32, a documentation-only address (RFC 5737) that no machine has: list the public address of the machine that runs `pulumi up`",
      ]);
    });

    for (const [cidr, rfc] of [
      ["192.0.2.0/24", "RFC 5737"],
      ["198.51.100.128/25", "RFC 5737"],
      ["203.0.113.9", "RFC 5737"],
      ["2001:db8:1::/48", "RFC 3849"],
      ["2001:DB8::7/128", "RFC 3849"],
    ] as const) {
      it(`when sshAllowCidrs holds ${cidr}, then it is refused under ${rfc}`, () => {
        const [problem] = problemsOf({ sshAllowCidrs: [cidr] });
        expect(problem).to.include(`, a documentation-only address (${rfc})`);
      });
    }

    it("when a CIDR only contains a documentation block or sits next to one, then it is accepted", () => {
      expect(
        problemsOf({ sshAllowCidrs: ["203.0.0.0/16", "198.51.101.0/24", "2001:db9::/32"] }),
      ).to.deep.equal([]);
    });

    it("when existingHost is a documentation-only address, then it is refused with the reason", () => {
      expect(problemsOf({ existingHost: "192.0.2.44" })).to.deep.equal([
        "keel:existingHost 192.0.2.44 is a documentation-only address (RFC 5737) that no server has: set the address of your Debian 13 server",
      ]);
      expect(problemsOf({ existingHost: "2001:db8::44" })[0]).to.include("(RFC 3849)");
      expect(problemsOf({ existingHost: "vm.example.net" })).to.deep.equal([
        "keel:existingHost vm.example.net is under example.net, a documentation-only domain (RFC 2606) that no one can own: set the address or host name of your Debian 13 server",
      ]);
    });

    it("when the domain is example.com, then the message says why and what to set", () => {
      expect(problemsOf({ domain: "example.com" })).to.deep.equal([
        "keel:domain example.com is a documentation-only domain (RFC 2606) that no one can own: set the domain of the Cloudflare zone you own",
      ]);
    });

    for (const [domain, reason] of [
      ["example.net", "example.net is a documentation-only domain (RFC 2606)"],
      ["shop.example.org", "shop.example.org is under example.org, a documentation-only domain"],
      ["keel.test", "keel.test is under .test, a top-level domain reserved by RFC 2606"],
      ["keel.example", "keel.example is under .example, a top-level domain"],
      ["keel.invalid", "keel.invalid is under .invalid, a top-level domain"],
      ["keel.localhost", "keel.localhost is under .localhost, a top-level domain"],
    ] as const) {
      it(`when the domain is ${domain}, then it is refused`, () => {
        expect(problemsOf({ domain })[0]).to.include(`keel:domain ${reason}`);
      });
    }

    it("when a domain merely contains a reserved word, then it is accepted", () => {
      expect(problemsOf({ domain: "example-shop.com" })).to.deep.equal([]);
      expect(problemsOf({ domain: "testing.dev" })).to.deep.equal([]);
    });

    it("when the ACME email is at a documentation-only domain, then it is refused: Let's Encrypt would refuse it", () => {
      expect(problemsOf({ acmeEmail: "ops@example.com" })).to.deep.equal([
        "keel:acmeEmail ops@example.com cannot receive mail: example.com is a documentation-only domain (RFC 2606) that no one can own, and Let's Encrypt refuses such addresses; give an address whose mail you read",
      ]);
    });
  });

  describe("the local platform's rules", () => {
    /** What the local platform and the e2e tier validate: a stand-in on this machine. */
    const standin = {
      domain: "keel.test",
      existingHost: "127.0.0.1",
      sshAllowCidrs: ["10.0.2.2/32", "203.0.113.7/32"],
      acmeEmail: "ops@keel.test",
      acmeServer: "https://localhost:14000/dir",
    };

    it("when local, then documentation-only values pass and the cloud-account keys default", () => {
      const settings = parseSettings(standin, { local: true });
      expect(settings.apiHost).to.equal("api.keel.test");
      expect(settings.cloudflareZoneId).to.equal("0".repeat(32));
      expect(settings.cloudflareAccountId).to.equal("0".repeat(32));
      expect(settings.sshPublicKey).to.equal("");
    });

    it("when the same values are checked as a real stack, then they are refused (the option matters)", () => {
      const keys = checkSettings(standin).problems.map((p) => p.key);
      expect(keys).to.have.members([
        "domain",
        "cloudflareZoneId",
        "cloudflareAccountId",
        "sshPublicKey",
        "sshAllowCidrs",
        "acmeEmail",
      ]);
    });

    it("when local, then unknown keys, placeholders and malformed values are still refused", () => {
      const problems = checkSettings(
        {
          ...standin,
          apiInstance: 3,
          cloudflareZoneId: "CHANGE_ME",
          sshAllowCidrs: ["10.0.0.1/8"],
        },
        { local: true },
      ).problems.map((p) => p.key);
      expect(problems).to.deep.equal(["apiInstance", "cloudflareZoneId", "sshAllowCidrs"]);
    });
  });

  describe("credentials", () => {
    it("when no secret or token is set, then each is named with how to set it", () => {
      expect(checkCredentials(() => false, {}).map((p) => p.message)).to.deep.equal([
        "keel:sshPrivateKey is required: Pulumi provisions the server over SSH with it; set it with `pulumi config set --secret keel:sshPrivateKey < ~/.ssh/keel_ed25519`",
        "digitalocean:token is required: DigitalOcean creates the droplet and the uptime check with it; set it with `pulumi config set --secret digitalocean:token` (or export DIGITALOCEAN_TOKEN)",
        "cloudflare:apiToken is required: Cloudflare creates the DNS records and the R2 bucket with it; set it with `pulumi config set --secret cloudflare:apiToken` (or export CLOUDFLARE_API_TOKEN)",
      ]);
    });

    it("when the provider tokens come from the environment, as the providers allow, then only the SSH key is missing", () => {
      const environment = { DIGITALOCEAN_TOKEN: "dop_v1_x", CLOUDFLARE_API_TOKEN: "cf" };
      expect(checkCredentials(() => false, environment).map((p) => p.key)).to.deep.equal([
        "sshPrivateKey",
      ]);
    });

    it("when every credential is set in the stack, then none is missing", () => {
      expect(checkCredentials(() => true, {})).to.deep.equal([]);
    });
  });

  it("when pulumi up is given a misspelled key and a documentation-only domain, then it refuses them with the same messages", async () => {
    const config = { ...stagingConfig(), domain: "example.com", volumSizeGb: 50 };
    const expected = checkSettings(config).problems.map((p) => p.message);
    expect(expected).to.have.length(2);
    const failure = await runProgram(config).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).to.be.instanceOf(ProgramFailure);
    const reason = (failure as ProgramFailure).reason;
    expect(reason).to.be.instanceOf(ConfigError);
    expect((reason as ConfigError).problems.map((p) => p.message)).to.have.members(expected);
  });
});
