import { expect } from "chai";
import {
  formatConfigErrors,
  loadConfig,
  loadMigrateConfig,
  type Config,
} from "../../api/src/config";

const VALID: Record<string, string> = {
  DATABASE_URL: "postgres://keel:secret@127.0.0.1:5432/keel",
  REDIS_URL: "redis://127.0.0.1:6379",
  JWT_SECRET: "j".repeat(40),
  FRONTEND_ORIGINS: "https://app.example.com, https://admin.example.com/",
  S3_ENDPOINT: "https://account.r2.cloudflarestorage.com",
  S3_BUCKET: "evidence",
  S3_ACCESS_KEY_ID: "access",
  S3_SECRET_ACCESS_KEY: "very-secret-value",
  BOOTSTRAP_API_KEY: "b".repeat(48),
};

function ok(env: Record<string, string>): Config {
  const result = loadConfig(env);
  if (!result.ok) throw new Error(result.errors.join("; "));
  return result.config;
}

function errors(env: Record<string, string>): readonly string[] {
  const result = loadConfig(env);
  if (result.ok) throw new Error("the configuration was accepted");
  return result.errors;
}

describe("configuration", () => {
  it("when only the required variables are set, then every other one takes its documented default", () => {
    const config = ok(VALID);
    expect(config).to.deep.include({
      nodeEnv: "production",
      host: "127.0.0.1",
      port: 3000,
      trustProxy: 0,
      logLevel: "info",
      rateLimitPerMinute: 600,
      expensiveRateLimitPerMinute: 60,
      frontendOrigins: ["https://app.example.com", "https://admin.example.com"],
    });
    expect(config.storage).to.deep.equal({
      kind: "s3",
      endpoint: "https://account.r2.cloudflarestorage.com",
      region: "auto",
      bucket: "evidence",
      accessKeyId: "access",
      secretAccessKey: "very-secret-value",
    });
  });

  it("when several variables are bad at once, then every one is named and no value is shown", () => {
    const env = {
      ...VALID,
      JWT_SECRET: "too-short-secret",
      FRONTEND_ORIGINS: "https://a.example, *",
    };
    delete (env as Record<string, string | undefined>).DATABASE_URL;
    const found = errors(env);
    expect(found.some((e) => e.startsWith("JWT_SECRET:") && e.includes("32"))).to.equal(true);
    expect(found).to.include('FRONTEND_ORIGINS: must not contain "*" in production');
    expect(found).to.include("DATABASE_URL: is required");
    expect(found.join("\n")).not.to.contain("too-short-secret");
    const message = formatConfigErrors("keel-api", found);
    expect(message.split("\n")[0]).to.equal("keel-api: invalid configuration, refusing to start:");
    expect(message).to.contain("  - DATABASE_URL: is required");
  });

  it('when NODE_ENV is development, then FRONTEND_ORIGINS may be "*"', () => {
    expect(
      ok({ ...VALID, NODE_ENV: "development", FRONTEND_ORIGINS: "*" }).frontendOrigins,
    ).to.equal("*");
  });

  it("when values are malformed, then each is refused with the reason", () => {
    const found = errors({
      ...VALID,
      NODE_ENV: "staging",
      PORT: "eighty",
      DATABASE_URL: "mysql://db/keel",
      REDIS_URL: "not a url",
      FRONTEND_ORIGINS: "https://app.example.com/path",
      BOOTSTRAP_API_KEY: `${"k".repeat(40)} with spaces`,
      TRUST_PROXY: "-1",
      LOG_LEVEL: "loud",
      RATE_LIMIT_PER_MINUTE: "0",
      EXPENSIVE_RATE_LIMIT_PER_MINUTE: "1.5",
      EVIDENCE_LOCAL_DIR: "relative/dir",
      JWT_KEYS_FILE: "etc/keel/jwt-keys",
    });
    const named = found.map((e) => e.split(":")[0]);
    expect(named).to.include.members([
      "NODE_ENV",
      "PORT",
      "DATABASE_URL",
      "REDIS_URL",
      "FRONTEND_ORIGINS",
      "BOOTSTRAP_API_KEY",
      "TRUST_PROXY",
      "LOG_LEVEL",
      "RATE_LIMIT_PER_MINUTE",
      "EXPENSIVE_RATE_LIMIT_PER_MINUTE",
      "EVIDENCE_LOCAL_DIR",
      "JWT_KEYS_FILE",
    ]);
  });

  it("when S3 settings are missing, then they are required unless EVIDENCE_LOCAL_DIR is set", () => {
    const env = { ...VALID };
    for (const name of ["S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_ENDPOINT"]) {
      delete (env as Record<string, string | undefined>)[name];
    }
    expect(errors(env)).to.deep.equal([
      "S3_BUCKET: is required unless EVIDENCE_LOCAL_DIR is set",
      "S3_ACCESS_KEY_ID: is required unless EVIDENCE_LOCAL_DIR is set",
      "S3_SECRET_ACCESS_KEY: is required unless EVIDENCE_LOCAL_DIR is set",
    ]);
    expect(ok({ ...env, EVIDENCE_LOCAL_DIR: "/var/lib/keel/evidence" }).storage).to.deep.equal({
      kind: "local",
      dir: "/var/lib/keel/evidence",
    });
  });

  it("when a variable is set but empty, then it counts as unset", () => {
    expect(ok({ ...VALID, S3_ENDPOINT: "", PORT: " " }).port).to.equal(3000);
    expect(errors({ ...VALID, JWT_SECRET: "" })).to.include("JWT_SECRET: is required");
  });

  it("when migrate.js reads its configuration, then only DATABASE_URL is required", () => {
    const result = loadMigrateConfig({ DATABASE_URL: VALID.DATABASE_URL ?? "" });
    expect(result).to.deep.equal({
      ok: true,
      config: { databaseUrl: VALID.DATABASE_URL, logLevel: "info" },
    });
    expect(loadMigrateConfig({})).to.deep.equal({
      ok: false,
      errors: ["DATABASE_URL: is required"],
    });
  });
});
