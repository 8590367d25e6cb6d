// The stack configuration's validation, as pure functions: every bad value is refused with a
// message naming the key and the fix, and good values come out typed and normalised.
import { expect } from "chai";
import {
  checkSettings,
  ConfigError,
  DEFAULT_RATE_LIMITS,
  isPlaceholder,
  LETS_ENCRYPT_DIRECTORY,
  normaliseCidr,
  parseSettings,
} from "../../infra/config-rules";
import { stagingConfig } from "./program";

function problemsOf(overrides: Record<string, unknown>): string[] {
  return checkSettings({ ...stagingConfig(), ...overrides }).problems.map((p) => p.message);
}

describe("stack configuration", () => {
  it("when every required key is valid, then the settings come out typed with defaults", () => {
    const settings = parseSettings(stagingConfig());
    expect(settings.apiHost).to.equal("api.example.com");
    expect(settings.region).to.equal("fra1");
    expect(settings.dropletSize).to.equal("s-1vcpu-2gb");
    expect(settings.memoryMb).to.equal(2048);
    expect(settings.acmeServer).to.equal(LETS_ENCRYPT_DIRECTORY);
    expect(settings.volumeSizeGb).to.equal(10);
    expect(settings.apiInstances).to.equal(2);
    expect(settings.secretsGeneration).to.equal(1);
    expect(settings.retainData).to.equal(true);
    expect(settings.allowSshFromAnywhere).to.equal(false);
    expect(settings.alertEmail).to.equal("ops@example.com");
    expect(settings.sshUser).to.equal("root");
    expect(settings.existingHost).to.equal(undefined);
    expect(settings.rateLimits).to.deep.equal(DEFAULT_RATE_LIMITS);
    expect(settings.sshAllowCidrs).to.deep.equal(["198.51.100.7/32", "2001:db8:1::/48"]);
  });

  it("when nothing is set, then every required key is named", () => {
    const keys = checkSettings({}).problems.map((p) => p.key);
    expect(keys).to.have.members([
      "domain",
      "cloudflareZoneId",
      "cloudflareAccountId",
      "sshPublicKey",
      "sshAllowCidrs",
      "frontendOrigins",
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

  it("when existingHost is an address or a name, then it is accepted, else refused", () => {
    expect(parseSettings({ ...stagingConfig(), existingHost: "192.0.2.44" }).existingHost).to.equal(
      "192.0.2.44",
    );
    expect(
      parseSettings({ ...stagingConfig(), existingHost: "vm.example.net" }).existingHost,
    ).to.equal("vm.example.net");
    expect(problemsOf({ existingHost: "not a host!" })[0]).to.include("keel:existingHost must be");
  });
});
