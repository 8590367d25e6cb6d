// The API's configuration: the environment, validated by one schema at start-up. A bad
// environment is reported as a list naming every bad variable (never its value), and the process
// refuses to start. Nothing else in the API reads process.env.
import { z } from "zod";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type NodeEnv = "production" | "development" | "test";

export type StorageConfig =
  | {
      readonly kind: "s3";
      /** Custom endpoint (R2, s3rver); unset means AWS S3. Path-style addressing when set. */
      readonly endpoint: string | undefined;
      readonly region: string;
      readonly bucket: string;
      readonly accessKeyId: string;
      readonly secretAccessKey: string;
    }
  | { readonly kind: "local"; readonly dir: string };

export interface Config {
  readonly nodeEnv: NodeEnv;
  readonly host: string;
  readonly port: number;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly jwtSecret: string;
  /** The ring of further keys that verify access tokens (auth/key-ring.ts); unset: none. */
  readonly jwtKeysFile: string | undefined;
  /**
   * Allowed CORS origins; "*" (any origin) is accepted outside production only. None: an API
   * without a browser front end, which sends no CORS headers.
   */
  readonly frontendOrigins: readonly string[] | "*";
  readonly storage: StorageConfig;
  readonly bootstrapApiKey: string;
  /** Number of reverse proxies in front of the API (nginx = 1). */
  readonly trustProxy: number;
  readonly logLevel: LogLevel;
  readonly rateLimitPerMinute: number;
  readonly expensiveRateLimitPerMinute: number;
}

/** What migrate.js needs: the database and nothing else. */
export interface MigrateConfig {
  readonly databaseUrl: string;
  readonly logLevel: LogLevel;
}

export type ConfigResult<T> =
  | { readonly ok: true; readonly config: T }
  | { readonly ok: false; readonly errors: readonly string[] };

/** Exit status of a process that refuses its configuration (sysexits.h EX_CONFIG). */
export const EXIT_CONFIG = 78;

// An empty variable (`S3_ENDPOINT=` in an env file) means "not set".
const blank = (value: unknown): unknown =>
  typeof value === "string" && value.trim() === "" ? undefined : value;

const required = (what: string) =>
  z.string({
    error: (issue) => (issue.input === undefined ? "is required" : `must be ${what}`),
  });

const integer = (min: number, max: number, fallback: number) =>
  z.preprocess(
    blank,
    z
      .string()
      .regex(/^\d+$/, `must be a whole number between ${min} and ${max}`)
      .transform(Number)
      .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`))
      .default(fallback),
  );

const urlWithScheme = (schemes: readonly string[]) =>
  required(`a URL (${schemes.join(", ")})`).refine(
    (value) => {
      try {
        return schemes.includes(new URL(value).protocol.slice(0, -1));
      } catch {
        return false;
      }
    },
    `must be a URL starting with ${schemes.map((s) => `${s}://`).join(" or ")}`,
  );

// An origin is scheme://host[:port], exactly as a browser sends it in the Origin header.
const isOrigin = (value: string): boolean => {
  try {
    const url = new URL(value);
    return (url.protocol === "https:" || url.protocol === "http:") && url.origin === value;
  } catch {
    return false;
  }
};

const envSchema = z.object({
  NODE_ENV: z.preprocess(
    blank,
    z
      .enum(["production", "development", "test"], {
        error: "must be production, development or test",
      })
      .default("production"),
  ),
  HOST: z.preprocess(blank, z.string().default("127.0.0.1")),
  PORT: integer(1, 65535, 3000),
  DATABASE_URL: z.preprocess(blank, urlWithScheme(["postgres", "postgresql"])),
  REDIS_URL: z.preprocess(blank, urlWithScheme(["redis", "rediss"])),
  JWT_SECRET: z.preprocess(
    blank,
    required("a string").min(32, "must be at least 32 characters long"),
  ),
  JWT_KEYS_FILE: z.preprocess(
    blank,
    z.string().startsWith("/", "must be an absolute path").optional(),
  ),
  // Unset or empty: no browser front end.
  FRONTEND_ORIGINS: z.preprocess(
    blank,
    z
      .string()
      .default("")
      .transform((value) =>
        value
          .split(",")
          .map((origin) => origin.trim().replace(/\/$/, ""))
          .filter((origin) => origin !== ""),
      )
      .refine(
        (origins) => origins.every((origin) => origin === "*" || isOrigin(origin)),
        "must be a comma-separated list of origins like https://app.example.com",
      ),
  ),
  S3_ENDPOINT: z.preprocess(blank, urlWithScheme(["https", "http"]).optional()),
  S3_REGION: z.preprocess(blank, z.string().default("auto")),
  S3_BUCKET: z.preprocess(blank, z.string().optional()),
  S3_ACCESS_KEY_ID: z.preprocess(blank, z.string().optional()),
  S3_SECRET_ACCESS_KEY: z.preprocess(blank, z.string().optional()),
  EVIDENCE_LOCAL_DIR: z.preprocess(
    blank,
    z.string().startsWith("/", "must be an absolute path").optional(),
  ),
  BOOTSTRAP_API_KEY: z.preprocess(
    blank,
    required("a string")
      .min(32, "must be at least 32 characters long")
      .max(256, "must be at most 256 characters long")
      .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces"),
  ),
  TRUST_PROXY: integer(0, 10, 0),
  LOG_LEVEL: z.preprocess(
    blank,
    z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")}` }).default("info"),
  ),
  RATE_LIMIT_PER_MINUTE: integer(1, 1_000_000, 600),
  EXPENSIVE_RATE_LIMIT_PER_MINUTE: integer(1, 1_000_000, 60),
});

const migrateSchema = z.object({
  DATABASE_URL: envSchema.shape.DATABASE_URL,
  LOG_LEVEL: envSchema.shape.LOG_LEVEL,
});

function describe(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
}

const isSet = (value: string | undefined): value is string => blank(value) !== undefined;

// Rules that span variables. They read the raw environment so that they are reported together
// with every other bad variable, not only once the rest is valid.
function crossChecks(env: NodeJS.ProcessEnv): string[] {
  const errors: string[] = [];
  const nodeEnv = isSet(env.NODE_ENV) ? env.NODE_ENV.trim() : "production";
  const origins = (env.FRONTEND_ORIGINS ?? "").split(",").map((origin) => origin.trim());
  if (nodeEnv === "production" && origins.includes("*")) {
    errors.push('FRONTEND_ORIGINS: must not contain "*" in production');
  }
  if (!isSet(env.EVIDENCE_LOCAL_DIR)) {
    for (const name of ["S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"]) {
      if (!isSet(env[name])) errors.push(`${name}: is required unless EVIDENCE_LOCAL_DIR is set`);
    }
  }
  return errors;
}

/** Validates the API's environment. */
export function loadConfig(env: NodeJS.ProcessEnv): ConfigResult<Config> {
  const parsed = envSchema.safeParse(env);
  const errors = [...(parsed.success ? [] : describe(parsed.error)), ...crossChecks(env)];
  if (!parsed.success || errors.length > 0) return { ok: false, errors };
  const e = parsed.data;
  const storage: StorageConfig =
    e.EVIDENCE_LOCAL_DIR !== undefined
      ? { kind: "local", dir: e.EVIDENCE_LOCAL_DIR }
      : {
          kind: "s3",
          endpoint: e.S3_ENDPOINT,
          region: e.S3_REGION,
          // Checked by crossChecks.
          bucket: e.S3_BUCKET ?? "",
          accessKeyId: e.S3_ACCESS_KEY_ID ?? "",
          secretAccessKey: e.S3_SECRET_ACCESS_KEY ?? "",
        };
  return {
    ok: true,
    config: {
      nodeEnv: e.NODE_ENV,
      host: e.HOST,
      port: e.PORT,
      databaseUrl: e.DATABASE_URL,
      redisUrl: e.REDIS_URL,
      jwtSecret: e.JWT_SECRET,
      jwtKeysFile: e.JWT_KEYS_FILE,
      frontendOrigins: e.FRONTEND_ORIGINS.includes("*") ? "*" : e.FRONTEND_ORIGINS,
      storage,
      bootstrapApiKey: e.BOOTSTRAP_API_KEY,
      trustProxy: e.TRUST_PROXY,
      logLevel: e.LOG_LEVEL,
      rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
      expensiveRateLimitPerMinute: e.EXPENSIVE_RATE_LIMIT_PER_MINUTE,
    },
  };
}

/** Validates the environment of migrate.js, which needs only DATABASE_URL. */
export function loadMigrateConfig(env: NodeJS.ProcessEnv): ConfigResult<MigrateConfig> {
  const parsed = migrateSchema.safeParse(env);
  if (!parsed.success) return { ok: false, errors: describe(parsed.error) };
  return {
    ok: true,
    config: { databaseUrl: parsed.data.DATABASE_URL, logLevel: parsed.data.LOG_LEVEL },
  };
}

/** The message printed when the configuration is refused: one line per bad variable. */
export function formatConfigErrors(program: string, errors: readonly string[]): string {
  return [
    `${program}: invalid configuration, refusing to start:`,
    ...errors.map((error) => `  - ${error}`),
  ].join("\n");
}
