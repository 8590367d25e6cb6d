// The rendered /etc/keel/api.env parses with the API's own configuration schema: with secrets
// shaped like the ones the Pulumi program generates, and with npm run render's placeholders.
import { expect } from "chai";
import { loadConfig } from "../../api/src/config";
import { SECRET_LENGTHS } from "../../infra/secrets";
import { renderApiEnv } from "../../provisioning/render/api";
import { PLACEHOLDER_SECRETS } from "../../tools/render";
import type { SecretValues } from "../../provisioning/values";
import { secretValues, serverValues } from "./fixtures";

/** Parses an env file the way systemd's EnvironmentFile= does for these plain values. */
function parseEnvFile(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split("\n")
      .filter((line) => line !== "" && !line.startsWith("#"))
      .map((line) => {
        const at = line.indexOf("=");
        return [line.slice(0, at), line.slice(at + 1)];
      }),
  );
}

function generatedShape(): SecretValues {
  const of = (length: number, letter: string): string => letter.repeat(length);
  return secretValues({
    postgresPassword: of(SECRET_LENGTHS.postgresPassword, "p"),
    redisPassword: of(SECRET_LENGTHS.redisPassword, "r"),
    jwtSecret: of(SECRET_LENGTHS.jwtSecret, "j"),
    adminApiKey: of(SECRET_LENGTHS.adminApiKey, "a"),
  });
}

describe("the API environment file", () => {
  for (const [what, secrets] of [
    ["secrets as long as the generated ones", generatedShape()],
    ["npm run render's placeholders", PLACEHOLDER_SECRETS],
  ] as const) {
    it(`when rendered with ${what}, then the API's schema accepts it`, () => {
      const env = { ...parseEnvFile(renderApiEnv(serverValues(), secrets)), PORT: "3001" };
      const result = loadConfig(env);
      expect(result.ok ? [] : result.errors).to.deep.equal([]);
      if (!result.ok) return;
      expect(result.config.nodeEnv).to.equal("production");
      expect(result.config.host).to.equal("127.0.0.1");
      expect(result.config.trustProxy).to.equal(1);
      expect(result.config.frontendOrigins).to.deep.equal([
        "https://app.example.com",
        "https://admin.example.com",
      ]);
      expect(result.config.storage).to.deep.include({
        kind: "s3",
        bucket: "keel-staging-evidence",
      });
      expect(result.config.bootstrapApiKey).to.equal(secrets.adminApiKey);
    });
  }

  it("when a secret is shorter than the API accepts, then the schema names it (the check can fail)", () => {
    const env = parseEnvFile(renderApiEnv(serverValues(), secretValues({ adminApiKey: "short" })));
    const result = loadConfig({ ...env, PORT: "3001" });
    expect(result.ok).to.equal(false);
    expect(result.ok ? "" : result.errors.join("\n")).to.include("BOOTSTRAP_API_KEY");
  });

  it("when a value would need quoting, then rendering refuses it", () => {
    expect(() => renderApiEnv(serverValues(), secretValues({ jwtSecret: "has space" }))).to.throw(
      /JWT_SECRET holds a character/,
    );
  });
});
