// Pure validation of the stack configuration: plain values in, a typed config or a list of
// problems out. infra/config.ts feeds it from pulumi.Config; `npm run render` feeds it from the
// stack file. Every problem names the key and says how to fix it.
import { isIP } from "node:net";

/** DigitalOcean regions that offer droplets, block volumes and reserved IPs. */
export const REGIONS = [
  "ams3",
  "atl1",
  "blr1",
  "fra1",
  "lon1",
  "nyc1",
  "nyc3",
  "sfo2",
  "sfo3",
  "sgp1",
  "syd1",
  "tor1",
] as const;

/** Droplet sizes Keel supports, with the memory the server's tuning is computed from. */
export const DROPLET_SIZES: Readonly<Record<string, { memoryMb: number; vcpus: number }>> = {
  "s-1vcpu-1gb": { memoryMb: 1024, vcpus: 1 },
  "s-1vcpu-2gb": { memoryMb: 2048, vcpus: 1 },
  "s-2vcpu-2gb": { memoryMb: 2048, vcpus: 2 },
  "s-2vcpu-4gb": { memoryMb: 4096, vcpus: 2 },
  "s-4vcpu-8gb": { memoryMb: 8192, vcpus: 4 },
  "s-8vcpu-16gb": { memoryMb: 16384, vcpus: 8 },
  "s-1vcpu-1gb-amd": { memoryMb: 1024, vcpus: 1 },
  "s-1vcpu-2gb-amd": { memoryMb: 2048, vcpus: 1 },
  "s-2vcpu-2gb-amd": { memoryMb: 2048, vcpus: 2 },
  "s-2vcpu-4gb-amd": { memoryMb: 4096, vcpus: 2 },
  "s-4vcpu-8gb-amd": { memoryMb: 8192, vcpus: 4 },
  "s-8vcpu-16gb-amd": { memoryMb: 16384, vcpus: 8 },
  "s-1vcpu-1gb-intel": { memoryMb: 1024, vcpus: 1 },
  "s-1vcpu-2gb-intel": { memoryMb: 2048, vcpus: 1 },
  "s-2vcpu-2gb-intel": { memoryMb: 2048, vcpus: 2 },
  "s-2vcpu-4gb-intel": { memoryMb: 4096, vcpus: 2 },
  "s-4vcpu-8gb-intel": { memoryMb: 8192, vcpus: 4 },
  "s-8vcpu-16gb-intel": { memoryMb: 16384, vcpus: 8 },
  "c-2": { memoryMb: 4096, vcpus: 2 },
  "c-4": { memoryMb: 8192, vcpus: 4 },
  "c-8": { memoryMb: 16384, vcpus: 8 },
  "g-2vcpu-8gb": { memoryMb: 8192, vcpus: 2 },
  "g-4vcpu-16gb": { memoryMb: 16384, vcpus: 4 },
  "g-8vcpu-32gb": { memoryMb: 32768, vcpus: 8 },
  "m-2vcpu-16gb": { memoryMb: 16384, vcpus: 2 },
  "m-4vcpu-32gb": { memoryMb: 32768, vcpus: 4 },
};

export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";

/** Rate limits enforced by nginx at the edge and by the API itself. */
export interface RateLimits {
  /** nginx: requests per minute per client IP on /v1/auth/*. */
  readonly edgeAuthPerMinute: number;
  /** nginx: extra auth requests allowed in a burst before 429. */
  readonly edgeAuthBurst: number;
  /** nginx: requests per second per client IP on the rest of the API (/health is unlimited). */
  readonly edgeApiPerSecond: number;
  /** nginx: extra API requests allowed in a burst before 429. */
  readonly edgeApiBurst: number;
  /** API: requests per minute per API key (or IP when anonymous). */
  readonly apiPerMinute: number;
  /** API: requests per minute per API key on evidence creation and downloads. */
  readonly apiExpensivePerMinute: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  edgeAuthPerMinute: 3,
  edgeAuthBurst: 5,
  edgeApiPerSecond: 10,
  edgeApiBurst: 20,
  apiPerMinute: 600,
  apiExpensivePerMinute: 60,
};

/** The stack's configuration, validated. Secrets are not here: see StackConfig in config.ts. */
export interface Settings {
  /** The Cloudflare zone, e.g. example.com. */
  readonly domain: string;
  readonly apiSubdomain: string;
  /** `<apiSubdomain>.<domain>`: where the API is served. */
  readonly apiHost: string;
  readonly cloudflareZoneId: string;
  readonly cloudflareAccountId: string;
  readonly region: string;
  readonly dropletSize: string;
  /** Memory of the server, from the droplet size; Postgres and Redis are tuned from it. */
  readonly memoryMb: number;
  readonly sshPublicKey: string;
  readonly sshUser: string;
  readonly sshAllowCidrs: readonly string[];
  readonly allowSshFromAnywhere: boolean;
  readonly frontendOrigins: readonly string[];
  readonly acmeEmail: string;
  readonly acmeServer: string;
  readonly volumeSizeGb: number;
  readonly apiInstances: number;
  /** Set: provision this address instead of creating a droplet. */
  readonly existingHost: string | undefined;
  readonly secretsGeneration: number;
  readonly retainData: boolean;
  readonly alertEmail: string;
  readonly rateLimits: RateLimits;
}

/** Keys that configure cloud accounts only; nothing rendered for the server depends on them. */
export const CLOUD_ONLY_KEYS = ["cloudflareZoneId", "cloudflareAccountId", "sshPublicKey"] as const;

/** One problem with one key. */
export interface ConfigProblem {
  readonly key: string;
  readonly message: string;
}

/** Raw values as read from config: strings, numbers, booleans, or parsed JSON. */
export type RawConfig = Readonly<Record<string, unknown>>;

export class ConfigError extends Error {
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(`invalid stack configuration:\n${problems.map((p) => `  - ${p.message}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

const PLACEHOLDER = /^<.*>$|CHANGE_?ME|^your[-_]|^todo$|^xxx+$/i;
const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** True for obvious placeholders such as `CHANGE_ME`, `your-zone-id` or `<zone id>`. */
export function isPlaceholder(value: string): boolean {
  return PLACEHOLDER.test(value.trim());
}

export function isHostname(value: string): boolean {
  const labels = value.split(".");
  return (
    value.length <= 253 && labels.length >= 2 && labels.every((label) => HOST_LABEL.test(label))
  );
}

/**
 * Parses an IPv4/IPv6 CIDR (a bare address counts as a single host) and returns it normalised,
 * or undefined when it is malformed or has host bits set.
 */
export function normaliseCidr(value: string): string | undefined {
  const [address, prefixText, ...rest] = value.trim().split("/");
  if (address === undefined || rest.length > 0) return undefined;
  const family = isIP(address);
  if (family === 0) return undefined;
  const bits = family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return undefined;
  const value128 = family === 4 ? ipv4ToBigInt(address) : ipv6ToBigInt(address);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((value128 & hostMask) !== 0n) return undefined;
  return `${address.toLowerCase()}/${prefix}`;
}

function ipv4ToBigInt(address: string): bigint {
  return address.split(".").reduce((acc, octet) => (acc << 8n) + BigInt(Number(octet)), 0n);
}

function ipv6ToBigInt(address: string): bigint {
  const [head = "", tail] = address.split("::");
  const parse = (part: string): string[] => (part === "" ? [] : part.split(":"));
  const expand = (groups: string[]): string[] =>
    groups.flatMap((g) => {
      if (!g.includes(".")) return [g];
      const v4 = ipv4ToBigInt(g);
      return [(v4 >> 16n).toString(16), (v4 & 0xffffn).toString(16)];
    });
  const left = expand(parse(head));
  const right = tail === undefined ? [] : expand(parse(tail));
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  return groups.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g, 16)), 0n);
}

/** Checks one value of a kind and records a problem when it is wrong. */
class Reader {
  readonly problems: ConfigProblem[] = [];

  constructor(private readonly raw: RawConfig) {}

  fail(key: string, message: string): void {
    this.problems.push({ key, message: `keel:${key} ${message}` });
  }

  has(key: string): boolean {
    const v = this.raw[key];
    return v !== undefined && v !== null && v !== "";
  }

  /** A required or defaulted string, refused when it is an obvious placeholder. */
  string(key: string, fallback?: string): string {
    const v = this.raw[key];
    if (v === undefined || v === null || v === "") {
      if (fallback === undefined) this.fail(key, "is required: set it with `pulumi config set`");
      return fallback ?? "";
    }
    if (typeof v !== "string") {
      this.fail(key, `must be a string, got ${JSON.stringify(v)}`);
      return fallback ?? "";
    }
    if (isPlaceholder(v)) {
      this.fail(key, `is still the placeholder "${v}": replace it with your real value`);
    }
    return v.trim();
  }

  integer(key: string, fallback: number, min: number, max: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null || v === "") return fallback;
    const n = typeof v === "number" ? v : typeof v === "string" ? Number(v.trim()) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      this.fail(key, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return n;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.raw[key];
    if (v === undefined || v === null || v === "") return fallback;
    if (v === true || v === "true") return true;
    if (v === false || v === "false") return false;
    this.fail(key, `must be true or false, got ${JSON.stringify(v)}`);
    return fallback;
  }

  /** A non-empty list of strings; a JSON string holding a list is accepted too. */
  list(key: string): string[] {
    let v = this.raw[key];
    if (typeof v === "string" && v.trim().startsWith("[")) {
      try {
        v = JSON.parse(v) as unknown;
      } catch {
        this.fail(key, 'is not valid JSON: write a list such as ["203.0.113.7/32"]');
        return [];
      }
    }
    if (v === undefined || v === null || v === "") {
      this.fail(
        key,
        "is required: set a list with `pulumi config set --path 'keel:" + key + "[0]' …`",
      );
      return [];
    }
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === "string")) {
      this.fail(key, `must be a non-empty list of strings, got ${JSON.stringify(v)}`);
      return [];
    }
    return v.map((x: string) => x.trim());
  }

  object(key: string): Record<string, unknown> {
    let v = this.raw[key];
    if (v === undefined || v === null || v === "") return {};
    if (typeof v === "string") {
      try {
        v = JSON.parse(v) as unknown;
      } catch {
        this.fail(key, "is not valid JSON");
        return {};
      }
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      this.fail(key, `must be an object, got ${JSON.stringify(v)}`);
      return {};
    }
    return v as Record<string, unknown>;
  }
}

const EMAIL = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;
const CLOUDFLARE_ID = /^[0-9a-f]{32}$/;
const SSH_PUBLIC_KEY =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]+=*( .*)?$/;
const SSH_USER = /^[a-z_][a-z0-9_-]{0,31}$/;

function checkEmail(r: Reader, key: string, value: string): void {
  if (value !== "" && !EMAIL.test(value)) r.fail(key, `must be an email address, got "${value}"`);
}

function readSshCidrs(r: Reader, allowAnywhere: boolean): string[] {
  const cidrs: string[] = [];
  for (const entry of r.list("sshAllowCidrs")) {
    const cidr = normaliseCidr(entry);
    if (cidr === undefined) {
      r.fail(
        "sshAllowCidrs",
        `contains "${entry}", which is not a CIDR such as 203.0.113.7/32 or 2001:db8::/48 (host bits must be zero)`,
      );
    } else if (cidr.endsWith("/0") && !allowAnywhere) {
      r.fail(
        "sshAllowCidrs",
        `contains ${cidr}: SSH would be open to the world; list your own addresses, or set keel:allowSshFromAnywhere true`,
      );
    } else {
      cidrs.push(cidr);
    }
  }
  return cidrs;
}

function readOrigins(r: Reader): string[] {
  const origins: string[] = [];
  for (const entry of r.list("frontendOrigins")) {
    if (entry === "*") {
      r.fail(
        "frontendOrigins",
        "contains *: any website could call the API with its users' credentials; list your front ends' origins, e.g. https://app.example.com",
      );
      continue;
    }
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      url = undefined;
    }
    if (
      url === undefined ||
      url.origin === "null" ||
      `${url.origin}` !== entry.replace(/\/$/, "")
    ) {
      r.fail(
        "frontendOrigins",
        `contains "${entry}", which is not an origin: write scheme and host only, e.g. https://app.example.com`,
      );
    } else if (url.protocol !== "https:") {
      r.fail("frontendOrigins", `contains "${entry}": origins must use https`);
    } else {
      origins.push(url.origin);
    }
  }
  return origins;
}

function readRateLimits(r: Reader): RateLimits {
  const given = r.object("rateLimits");
  const limits: Record<string, number> = { ...DEFAULT_RATE_LIMITS };
  for (const [name, value] of Object.entries(given)) {
    if (!(name in DEFAULT_RATE_LIMITS)) {
      r.fail(
        "rateLimits",
        `has an unknown field "${name}"; known fields: ${Object.keys(DEFAULT_RATE_LIMITS).join(", ")}`,
      );
    } else if (
      typeof value !== "number" ||
      !Number.isInteger(value) ||
      value < 1 ||
      value > 100000
    ) {
      r.fail(
        "rateLimits",
        `field ${name} must be a whole number from 1 to 100000, got ${JSON.stringify(value)}`,
      );
    } else {
      limits[name] = value;
    }
  }
  return limits as unknown as RateLimits;
}

function readAcmeServer(r: Reader): string {
  const value = r.string("acmeServer", LETS_ENCRYPT_DIRECTORY);
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== "https:") {
    r.fail("acmeServer", `must be the https URL of an ACME directory, got "${value}"`);
  }
  return value;
}

/**
 * Validates raw config values. Returns the settings and every problem found; callers decide
 * which problems are fatal (all of them for `pulumi up`).
 */
export function checkSettings(raw: RawConfig): { settings: Settings; problems: ConfigProblem[] } {
  const r = new Reader(raw);

  const domain = r.string("domain").toLowerCase();
  if (domain !== "" && !isHostname(domain)) {
    r.fail("domain", `must be a DNS zone such as example.com, got "${domain}"`);
  }
  const apiSubdomain = r.string("apiSubdomain", "api").toLowerCase();
  if (!HOST_LABEL.test(apiSubdomain)) {
    r.fail("apiSubdomain", `must be one DNS label such as api, got "${apiSubdomain}"`);
  }

  const cloudflareZoneId = r.string("cloudflareZoneId");
  const cloudflareAccountId = r.string("cloudflareAccountId");
  for (const [key, value] of [
    ["cloudflareZoneId", cloudflareZoneId],
    ["cloudflareAccountId", cloudflareAccountId],
  ] as const) {
    if (value !== "" && !isPlaceholder(value) && !CLOUDFLARE_ID.test(value)) {
      r.fail(key, `must be a 32-character hex id from the Cloudflare dashboard, got "${value}"`);
    }
  }

  const region = r.string("region", "fra1");
  if (!(REGIONS as readonly string[]).includes(region)) {
    r.fail(
      "region",
      `"${region}" is not a known DigitalOcean region; use one of ${REGIONS.join(", ")}`,
    );
  }
  const dropletSize = r.string("dropletSize", "s-1vcpu-2gb");
  const size = DROPLET_SIZES[dropletSize];
  if (size === undefined) {
    r.fail(
      "dropletSize",
      `"${dropletSize}" is not a supported droplet size; use one of ${Object.keys(DROPLET_SIZES).join(", ")}`,
    );
  }

  const sshPublicKey = r.string("sshPublicKey");
  if (sshPublicKey !== "" && !isPlaceholder(sshPublicKey) && !SSH_PUBLIC_KEY.test(sshPublicKey)) {
    r.fail(
      "sshPublicKey",
      "must be an OpenSSH public key line, e.g. the contents of ~/.ssh/id_ed25519.pub",
    );
  }
  const sshUser = r.string("sshUser", "root");
  if (!SSH_USER.test(sshUser)) r.fail("sshUser", `must be a Unix user name, got "${sshUser}"`);

  const allowSshFromAnywhere = r.boolean("allowSshFromAnywhere", false);
  const sshAllowCidrs = readSshCidrs(r, allowSshFromAnywhere);
  const frontendOrigins = readOrigins(r);

  const acmeEmail = r.string("acmeEmail");
  checkEmail(r, "acmeEmail", acmeEmail);
  const alertEmail = r.string("alertEmail", acmeEmail);
  checkEmail(r, "alertEmail", alertEmail);

  let existingHost: string | undefined;
  if (r.has("existingHost")) {
    existingHost = r.string("existingHost").toLowerCase();
    if (isIP(existingHost) === 0 && !isHostname(existingHost)) {
      r.fail("existingHost", `must be an IP address or host name, got "${existingHost}"`);
    }
  }

  const settings: Settings = {
    domain,
    apiSubdomain,
    apiHost: `${apiSubdomain}.${domain}`,
    cloudflareZoneId,
    cloudflareAccountId,
    region,
    dropletSize,
    memoryMb: size?.memoryMb ?? 0,
    sshPublicKey,
    sshUser,
    sshAllowCidrs,
    allowSshFromAnywhere,
    frontendOrigins,
    acmeEmail,
    acmeServer: readAcmeServer(r),
    volumeSizeGb: r.integer("volumeSizeGb", 10, 1, 16384),
    apiInstances: r.integer("apiInstances", 2, 1, 8),
    existingHost,
    secretsGeneration: r.integer("secretsGeneration", 1, 1, 1_000_000),
    retainData: r.boolean("retainData", true),
    alertEmail,
    rateLimits: readRateLimits(r),
  };
  return { settings, problems: r.problems };
}

/** Validates raw config values and throws one ConfigError naming every problem. */
export function parseSettings(raw: RawConfig): Settings {
  const { settings, problems } = checkSettings(raw);
  if (problems.length > 0) throw new ConfigError(problems);
  return settings;
}
