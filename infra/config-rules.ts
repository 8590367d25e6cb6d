// Pure validation of the stack configuration: plain values in, a typed config or a list of
// problems out. infra/config.ts feeds it from pulumi.Config; `npm run check` and
// `npm run render` feed it from the stack file; the local platform feeds it the stand-in's
// values. Every problem names the key and says how to fix it.
import { isIP } from "node:net";

/** Every key of the `keel` namespace, secret or not; anything else under `keel:` is a typo. */
export const CONFIG_KEYS = [
  "domain",
  "apiSubdomain",
  "cloudflareZoneId",
  "cloudflareAccountId",
  "region",
  "dropletSize",
  "sshPublicKey",
  "sshPrivateKey",
  "sshUser",
  "sshAllowCidrs",
  "allowSshFromAnywhere",
  "operatorKeys",
  "frontendOrigins",
  "acmeEmail",
  "acmeServer",
  "volumeSizeGb",
  "apiInstances",
  "existingHost",
  "secretsGeneration",
  "secretGenerations",
  "retainData",
  "alertEmail",
  "smtp",
  "rateLimits",
  "releaseWatchSeconds",
  "releaseMaxErrorRate",
  "releaseMaxLatencyFactor",
  "apiRelease",
  "backupRetentionFull",
  "backupLockDays",
  "restore",
  "adoptVolumeId",
  "adoptBuckets",
  "backupPassphrase",
  "smtpPassword",
] as const;

/**
 * The keys that hold secrets: read as secrets, never into Settings. The rules see only whether
 * one is set (infra/config.ts hands them `true`, a stack file its `secure:` value), never what
 * it is.
 */
export const SECRET_KEYS: readonly string[] = ["sshPrivateKey", "backupPassphrase", "smtpPassword"];

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

/**
 * keel:smtp: the SMTP server Alertmanager sends alert mail through, to keel:alertEmail. Its
 * password is the secret keel:smtpPassword, never here.
 */
export interface SmtpSettings {
  /** Host name or IP address of the SMTP server. */
  readonly host: string;
  /** 587 (submission with STARTTLS) unless set. */
  readonly port: number;
  /** "" (the default) for a server that takes mail without authentication. */
  readonly username: string;
  /** The From address of alert mail. */
  readonly from: string;
  /** Refuse to send unless the server offers STARTTLS; true unless set. */
  readonly requireTls: boolean;
}

const SMTP_DEFAULTS = { port: 587, username: "", requireTls: true } as const;
const SMTP_FIELDS: readonly (keyof SmtpSettings)[] = [
  "host",
  "port",
  "username",
  "from",
  "requireTls",
];

/** The secrets keel:secretGenerations rotates one by one: generated ones and the R2 tokens. */
export const ROTATABLE_SECRETS = [
  "postgres",
  "redis",
  "jwt",
  "adminApiKey",
  "evidenceToken",
  "backupToken",
] as const;
export type RotatableSecret = (typeof ROTATABLE_SECRETS)[number];
/** Each secret's own generation; 1 (the default) until it is rotated alone. */
export type SecretGenerations = Readonly<Record<RotatableSecret, number>>;

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
  /** Public keys of operators: each may run only the server's keel-ops verbs, nothing else. */
  readonly operatorKeys: readonly string[];
  readonly frontendOrigins: readonly string[];
  readonly acmeEmail: string;
  readonly acmeServer: string;
  readonly volumeSizeGb: number;
  readonly apiInstances: number;
  /** Set: provision this address instead of creating a droplet. */
  readonly existingHost: string | undefined;
  readonly secretsGeneration: number;
  /** keel:secretGenerations: bumping one rotates that secret alone. */
  readonly secretGenerations: SecretGenerations;
  readonly retainData: boolean;
  /** Where alerts go: DigitalOcean's, and Alertmanager's when keel:smtp is set. */
  readonly alertEmail: string;
  /**
   * keel:smtp: unset, firing alerts show only in `npm run ops -- status`; set, Alertmanager also
   * mails them to alertEmail through this server.
   */
  readonly smtp: SmtpSettings | undefined;
  readonly rateLimits: RateLimits;
  readonly releaseWatch: ReleaseWatch;
  /**
   * keel:apiRelease: "" to build and deploy the working tree's API, or the id of a release
   * kept on the server to deploy that one (no build).
   */
  readonly apiRelease: string;
  /** Full backups kept, each with its differentials and the WAL to replay from it. */
  readonly backupRetentionFull: number;
  /** Days the backup bucket refuses to delete or overwrite a backup file (0: no lock). */
  readonly backupLockDays: number;
  /**
   * keel:restore: "" for none, "latest", "undo", or a UTC time as YYYY-MM-DDTHH:MM:SSZ to
   * restore the database to; `pulumi up` applies each value once.
   */
  readonly restore: string;
  /** A data volume kept by an earlier `pulumi destroy`: the stack adopts it instead of a new one. */
  readonly adoptVolumeId: string | undefined;
  /** The evidence and backup buckets kept by an earlier `pulumi destroy` are adopted. */
  readonly adoptBuckets: boolean;
}

/** Harmless stand-ins for the cloud-account keys, which the local platform may leave out. */
const CLOUD_ACCOUNT_DEFAULTS: Readonly<Record<string, string>> = {
  cloudflareZoneId: "0".repeat(32),
  cloudflareAccountId: "0".repeat(32),
  sshPublicKey: "",
};

export interface RuleOptions {
  /**
   * The local platform and the e2e tier: a stand-in on this machine with a `.test` domain and
   * pebble. Documentation-only values are accepted and the cloud-account keys may be absent.
   * `pulumi up` never sets it.
   */
  readonly local?: boolean;
}

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

interface Cidr {
  readonly address: string;
  readonly bits: number;
  readonly prefix: number;
  readonly value: bigint;
}

/** Parses an IPv4/IPv6 CIDR; a bare address counts as a single host. */
function parseCidr(text: string): Cidr | undefined {
  const [address, prefixText, ...rest] = text.trim().split("/");
  if (address === undefined || rest.length > 0) return undefined;
  const family = isIP(address);
  if (family === 0) return undefined;
  const bits = family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return undefined;
  const value = family === 4 ? ipv4ToBigInt(address) : ipv6ToBigInt(address);
  return { address, bits, prefix, value };
}

/**
 * Parses an IPv4/IPv6 CIDR (a bare address counts as a single host) and returns it normalised,
 * or undefined when it is malformed or has host bits set.
 */
export function normaliseCidr(value: string): string | undefined {
  const cidr = parseCidr(value);
  if (cidr === undefined) return undefined;
  const hostMask = (1n << BigInt(cidr.bits - cidr.prefix)) - 1n;
  if ((cidr.value & hostMask) !== 0n) return undefined;
  return `${cidr.address.toLowerCase()}/${cidr.prefix}`;
}

/** Address blocks reserved for documentation: no machine on the internet has one. */
const DOCUMENTATION_NETWORKS = [
  { network: "192.0.2.0/24", rfc: "RFC 5737" },
  { network: "198.51.100.0/24", rfc: "RFC 5737" },
  { network: "203.0.113.0/24", rfc: "RFC 5737" },
  { network: "2001:db8::/32", rfc: "RFC 3849" },
] as const;

/**
 * The RFC reserving an address or CIDR for documentation when all of it lies in such a block,
 * else undefined. A wider CIDR that merely contains one (203.0.0.0/16) is a real network.
 */
function documentationAddressRfc(value: string): string | undefined {
  const cidr = parseCidr(value);
  if (cidr === undefined) return undefined;
  for (const { network, rfc } of DOCUMENTATION_NETWORKS) {
    const block = parseCidr(network);
    if (block === undefined || block.bits !== cidr.bits || cidr.prefix < block.prefix) continue;
    const shift = BigInt(block.bits - block.prefix);
    if (cidr.value >> shift === block.value >> shift) return rfc;
  }
  return undefined;
}

/** Domains reserved for documentation (RFC 2606): no one can register them. */
const DOCUMENTATION_DOMAINS = ["example.com", "example.net", "example.org"];
/** Top-level domains reserved by RFC 2606: public DNS never resolves a name under them. */
const RESERVED_TLDS = ["test", "example", "invalid", "localhost"];

/**
 * Why a DNS name cannot belong to a real stack, as a phrase starting with the name, or
 * undefined when it can.
 */
function reservedNameReason(name: string): string | undefined {
  const lower = name.toLowerCase().replace(/\.$/, "");
  const domain = DOCUMENTATION_DOMAINS.find((d) => lower === d || lower.endsWith(`.${d}`));
  if (domain !== undefined) {
    const what = "a documentation-only domain (RFC 2606) that no one can own";
    return lower === domain ? `${lower} is ${what}` : `${lower} is under ${domain}, ${what}`;
  }
  const tld = lower.split(".").pop() ?? "";
  if (RESERVED_TLDS.includes(tld)) {
    return `${lower} is under .${tld}, a top-level domain reserved by RFC 2606 that public DNS never resolves`;
  }
  return undefined;
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

/**
 * Checks one value of a kind and records a problem when it is wrong. A reader of an object
 * key's fields (made by `fields`, with a `parent`) reads them with the same helpers; their
 * problems are its parent's, as `keel:<key> field <name> …`.
 */
class Reader {
  readonly problems: ConfigProblem[];

  constructor(
    private readonly raw: RawConfig,
    private readonly parent?: { readonly reader: Reader; readonly key: string },
  ) {
    this.problems = parent?.reader.problems ?? [];
  }

  fail(key: string, message: string): void {
    if (this.parent === undefined) {
      this.problems.push({ key, message: `keel:${key} ${message}` });
    } else {
      this.parent.reader.fail(this.parent.key, `field ${key} ${message}`);
    }
  }

  /** How to set a missing value: the key itself, or a field of an object key by its path. */
  private setCommand(key: string): string {
    return this.parent === undefined
      ? "`pulumi config set`"
      : `\`pulumi config set --path 'keel:${this.parent.key}.${key}' …\``;
  }

  has(key: string): boolean {
    const v = this.raw[key];
    return v !== undefined && v !== null && v !== "";
  }

  /** A required or defaulted string, refused when it is an obvious placeholder. */
  string(key: string, fallback?: string): string {
    const v = this.raw[key];
    if (v === undefined || v === null || v === "") {
      if (fallback === undefined) {
        this.fail(key, `is required: set it with ${this.setCommand(key)}`);
      }
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

  /** A share such as 0.1, from 0.001 (a tenth of a percent; the server reads it as 0.x) to 1. */
  fraction(key: string, fallback: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null || v === "") return fallback;
    const n = typeof v === "number" ? v : typeof v === "string" ? Number(v.trim()) : NaN;
    if (!(n >= 0.001 && n <= 1)) {
      this.fail(key, `must be a share from 0.001 to 1 (0.1 is 10 %), got ${JSON.stringify(v)}`);
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

  /**
   * A list of strings; a JSON string holding a list is accepted too. A required list must not
   * be empty; an optional one may be absent or empty.
   */
  list(key: string, required = true): string[] {
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
      if (required) {
        this.fail(
          key,
          "is required: set a list with `pulumi config set --path 'keel:" + key + "[0]' …`",
        );
      }
      return [];
    }
    const empty = Array.isArray(v) && v.length === 0;
    if (!Array.isArray(v) || (required && empty) || !v.every((x) => typeof x === "string")) {
      this.fail(
        key,
        `must be a ${required ? "non-empty " : ""}list of strings, got ${JSON.stringify(v)}`,
      );
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

  /**
   * The fields of object key `key` that are among `known`; each other field is a problem
   * naming it and the known ones.
   */
  knownFields(key: string, known: readonly string[]): Record<string, unknown> {
    const given = this.object(key);
    for (const name of Object.keys(given).filter((n) => !known.includes(n))) {
      this.fail(key, `has an unknown field "${name}"; known fields: ${known.join(", ")}`);
    }
    return Object.fromEntries(Object.entries(given).filter(([name]) => known.includes(name)));
  }

  /** A reader of object key `key`'s known fields (see knownFields). */
  fields(key: string, known: readonly string[]): Reader {
    return new Reader(this.knownFields(key, known), { reader: this, key });
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

function readSshCidrs(r: Reader, allowAnywhere: boolean, real: boolean): string[] {
  const cidrs: string[] = [];
  for (const entry of r.list("sshAllowCidrs")) {
    const cidr = normaliseCidr(entry);
    const rfc = cidr === undefined || !real ? undefined : documentationAddressRfc(cidr);
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
    } else if (rfc !== undefined) {
      r.fail(
        "sshAllowCidrs",
        `contains ${cidr}, a documentation-only address (${rfc}) that no machine has: list the public address of the machine that runs \`pulumi up\``,
      );
    } else {
      cidrs.push(cidr);
    }
  }
  return cidrs;
}

/** The browser front ends' origins; none means an API without one, which sends no CORS headers. */
function readOperatorKeys(r: Reader): string[] {
  const keys: string[] = [];
  for (const entry of r.list("operatorKeys", false)) {
    if (SSH_PUBLIC_KEY.test(entry)) {
      keys.push(entry);
    } else {
      r.fail(
        "operatorKeys",
        `contains "${entry.slice(0, 40)}", which is not one OpenSSH public key line such as the contents of ~/.ssh/keel_operator.pub`,
      );
    }
  }
  return keys;
}

function readOrigins(r: Reader): string[] {
  const origins: string[] = [];
  for (const entry of r.list("frontendOrigins", false)) {
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
  const given = r.knownFields("rateLimits", Object.keys(DEFAULT_RATE_LIMITS));
  const limits: Record<string, number> = { ...DEFAULT_RATE_LIMITS };
  for (const [name, value] of Object.entries(given)) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 100000) {
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

function readSecretGenerations(r: Reader): SecretGenerations {
  const given = r.knownFields("secretGenerations", ROTATABLE_SECRETS);
  const generations: Record<string, number> = Object.fromEntries(
    ROTATABLE_SECRETS.map((name) => [name, 1]),
  );
  for (const [name, value] of Object.entries(given)) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 1_000_000) {
      r.fail(
        "secretGenerations",
        `field ${name} must be a whole number from 1 to 1000000, got ${JSON.stringify(value)}`,
      );
    } else {
      generations[name] = value;
    }
  }
  return generations as SecretGenerations;
}

/**
 * keel:smtp and the secret keel:smtpPassword, which only it uses: the password is required
 * with a username and has no meaning without keel:smtp.
 */
function readSmtp(r: Reader): SmtpSettings | undefined {
  const hasPassword = r.has("smtpPassword");
  if (!r.has("smtp")) {
    if (hasPassword) {
      r.fail(
        "smtpPassword",
        "is set, but keel:smtp is not, so no mail would be sent with it: set keel:smtp (`pulumi config set --path 'keel:smtp.host' …` and `--path 'keel:smtp.from' …`), or remove the password (`pulumi config rm keel:smtpPassword`)",
      );
    }
    return undefined;
  }
  const smtp = r.fields("smtp", SMTP_FIELDS);
  const host = smtp.string("host").toLowerCase();
  if (host !== "" && isIP(host) === 0 && !isHostname(host)) {
    smtp.fail("host", `must be the SMTP server's host name or IP address, got "${host}"`);
  }
  const from = smtp.string("from");
  checkEmail(smtp, "from", from);
  const username = smtp.string("username", SMTP_DEFAULTS.username);
  if (username !== "" && !hasPassword) {
    r.fail(
      "smtpPassword",
      `is required with keel:smtp field username ("${username}"): set it with \`pulumi config set --secret keel:smtpPassword …\`, or remove the username if the server needs no login`,
    );
  }
  return {
    host,
    port: smtp.integer("port", SMTP_DEFAULTS.port, 1, 65535),
    username,
    from,
    requireTls: smtp.boolean("requireTls", SMTP_DEFAULTS.requireTls),
  };
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

/** Levenshtein distance, counting a swap of two neighbouring letters as one edit. */
function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      let best = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, (before[j - 2] ?? 0) + 1);
      }
      current.push(best);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The known key a misspelled one was most likely meant to be, if one is within two edits. */
export function closestKey(key: string): string | undefined {
  let closest: string | undefined;
  let distance = 3;
  for (const known of CONFIG_KEYS) {
    const d = editDistance(key.toLowerCase(), known.toLowerCase());
    if (d < distance) [closest, distance] = [known, d];
  }
  return closest;
}

function checkUnknownKeys(r: Reader, raw: RawConfig): void {
  const known = new Set<string>(CONFIG_KEYS);
  for (const key of Object.keys(raw).filter((k) => !known.has(k))) {
    const closest = closestKey(key);
    r.fail(
      key,
      closest === undefined
        ? `is not a Keel setting: remove it (\`pulumi config rm keel:${key}\`); the settings are ${CONFIG_KEYS.join(", ")}`
        : `is not a Keel setting: did you mean keel:${closest}? Rename the key in the stack file (or \`pulumi config rm keel:${key}\`, then set keel:${closest})`,
    );
  }
}

function readDomain(r: Reader, real: boolean): string {
  const domain = r.string("domain").toLowerCase();
  const reserved = real ? reservedNameReason(domain) : undefined;
  if (domain !== "" && !isHostname(domain)) {
    r.fail("domain", `must be a DNS zone such as example.com, got "${domain}"`);
  } else if (domain !== "" && reserved !== undefined) {
    r.fail("domain", `${reserved}: set the domain of the Cloudflare zone you own`);
  }
  return domain;
}

function readAcmeEmail(r: Reader, real: boolean): string {
  const email = r.string("acmeEmail");
  checkEmail(r, "acmeEmail", email);
  const reserved =
    real && EMAIL.test(email) ? reservedNameReason(email.split("@")[1] ?? "") : undefined;
  if (reserved !== undefined) {
    r.fail(
      "acmeEmail",
      `${email} cannot receive mail: ${reserved}, and Let's Encrypt refuses such addresses; give an address whose mail you read`,
    );
  }
  return email;
}

function readExistingHost(r: Reader, real: boolean): string | undefined {
  if (!r.has("existingHost")) return undefined;
  const host = r.string("existingHost").toLowerCase();
  const isAddress = isIP(host) !== 0;
  if (!isAddress && !isHostname(host)) {
    r.fail("existingHost", `must be an IP address or host name, got "${host}"`);
    return host;
  }
  if (!real) return host;
  const rfc = isAddress ? documentationAddressRfc(host) : undefined;
  const reserved = isAddress ? undefined : reservedNameReason(host);
  if (rfc !== undefined) {
    r.fail(
      "existingHost",
      `${host} is a documentation-only address (${rfc}) that no server has: set the address of your Debian 13 server`,
    );
  } else if (reserved !== undefined) {
    r.fail("existingHost", `${reserved}: set the address or host name of your Debian 13 server`);
  }
  return host;
}

/**
 * Validates raw config values: every key of `raw` must be a Keel setting. Returns the settings
 * and every problem found; callers decide which problems are fatal (all of them for
 * `pulumi up`). Without `local`, the rules are those of a real stack.
 */
export function checkSettings(
  raw: RawConfig,
  options: RuleOptions = {},
): { settings: Settings; problems: ConfigProblem[] } {
  const r = new Reader(raw);
  const real = options.local !== true;
  checkUnknownKeys(r, raw);
  /** A cloud-account key: required for a real stack, a harmless default locally. */
  const account = (key: string): string =>
    r.string(key, real ? undefined : CLOUD_ACCOUNT_DEFAULTS[key]);

  const domain = readDomain(r, real);
  const apiSubdomain = r.string("apiSubdomain", "api").toLowerCase();
  if (!HOST_LABEL.test(apiSubdomain)) {
    r.fail("apiSubdomain", `must be one DNS label such as api, got "${apiSubdomain}"`);
  }

  const cloudflareZoneId = account("cloudflareZoneId");
  const cloudflareAccountId = account("cloudflareAccountId");
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

  const sshPublicKey = account("sshPublicKey");
  if (sshPublicKey !== "" && !isPlaceholder(sshPublicKey) && !SSH_PUBLIC_KEY.test(sshPublicKey)) {
    r.fail(
      "sshPublicKey",
      "must be an OpenSSH public key line, e.g. the contents of ~/.ssh/id_ed25519.pub",
    );
  }
  const sshUser = r.string("sshUser", "root");
  if (!SSH_USER.test(sshUser)) r.fail("sshUser", `must be a Unix user name, got "${sshUser}"`);

  const allowSshFromAnywhere = r.boolean("allowSshFromAnywhere", false);
  const sshAllowCidrs = readSshCidrs(r, allowSshFromAnywhere, real);
  const frontendOrigins = readOrigins(r);

  const acmeEmail = readAcmeEmail(r, real);
  const alertEmail = r.string("alertEmail", acmeEmail);
  checkEmail(r, "alertEmail", alertEmail);

  const existingHost = readExistingHost(r, real);
  let adoptVolumeId: string | undefined;
  if (r.has("adoptVolumeId")) {
    adoptVolumeId = r.string("adoptVolumeId");
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(adoptVolumeId)) {
      r.fail(
        "adoptVolumeId",
        `must be a DigitalOcean volume id (a UUID, from \`doctl compute volume list\`), got "${adoptVolumeId}"`,
      );
    }
    if (existingHost !== undefined) {
      r.fail("adoptVolumeId", "has no meaning with keel:existingHost, which creates no volume");
    }
  }
  const backup = readBackupPolicy(r);
  const retainData = r.boolean("retainData", true);
  if (!retainData && backup.lockDays > 0) {
    r.fail(
      "backupLockDays",
      `(${backup.lockDays}) locks backups against deletion, but keel:retainData false asks \`pulumi destroy\` to delete them: set keel:backupLockDays 0 as well`,
    );
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
    operatorKeys: readOperatorKeys(r),
    frontendOrigins,
    acmeEmail,
    acmeServer: readAcmeServer(r),
    volumeSizeGb: r.integer("volumeSizeGb", 10, 1, 16384),
    apiInstances: r.integer("apiInstances", 2, 1, 8),
    existingHost,
    secretsGeneration: r.integer("secretsGeneration", 1, 1, 1_000_000),
    secretGenerations: readSecretGenerations(r),
    retainData,
    alertEmail,
    smtp: readSmtp(r),
    rateLimits: readRateLimits(r),
    releaseWatch: readReleaseWatch(r),
    apiRelease: readApiRelease(r),
    backupRetentionFull: backup.retentionFull,
    backupLockDays: backup.lockDays,
    restore: readRestore(r),
    adoptVolumeId,
    adoptBuckets: r.boolean("adoptBuckets", false),
  };
  return { settings, problems: r.problems };
}

/** keel:restore, normalised: latest, undo, or an RFC 3339 time given in UTC seconds. */
function readRestore(r: Reader): string {
  const value = r.string("restore", "");
  if (value === "" || value === "latest" || value === "undo") return value;
  const rfc3339 = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
  const when = Date.parse(value);
  if (!rfc3339.test(value) || Number.isNaN(when)) {
    r.fail(
      "restore",
      `must be latest, undo, or an RFC 3339 time with its offset such as 2026-12-02T14:05:00Z, got "${value}"`,
    );
    return "";
  }
  return `${new Date(Math.floor(when / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}

/**
 * After a new API release is on every instance, Keel watches it through nginx for `seconds`
 * (0: not at all) and puts the previous release back when more than `maxErrorRate` of the
 * requests the API answered got a 5xx, or when its p99 latency is above `maxLatencyFactor` times
 * the previous release's (counted from at least 50 ms).
 */
export interface ReleaseWatch {
  readonly seconds: number;
  readonly maxErrorRate: number;
  readonly maxLatencyFactor: number;
}

function readReleaseWatch(r: Reader): ReleaseWatch {
  return {
    seconds: r.integer("releaseWatchSeconds", 60, 0, 900),
    maxErrorRate: r.fraction("releaseMaxErrorRate", 0.1),
    maxLatencyFactor: r.integer("releaseMaxLatencyFactor", 3, 2, 100),
  };
}

function readApiRelease(r: Reader): string {
  const id = r.string("apiRelease", "");
  if (id !== "" && !/^[0-9a-f]{16}$/.test(id)) {
    r.fail(
      "apiRelease",
      `must be the id of a release kept on the server (16 hex digits, as \`npm run ops -- releases\` lists them), got "${id}"`,
    );
    return "";
  }
  return id;
}

/** Retention and lock: a lock longer than the retention would stop pgBackRest expiring. */
function readBackupPolicy(r: Reader): { retentionFull: number; lockDays: number } {
  const retentionFull = r.integer("backupRetentionFull", 4, 1, 52);
  const lockDays = r.integer("backupLockDays", 7, 0, 365);
  if (lockDays >= retentionFull * 7) {
    r.fail(
      "backupLockDays",
      `(${lockDays}) must be shorter than the retention (keel:backupRetentionFull ${retentionFull} weekly full backups = ${retentionFull * 7} days), or expired backups could never be deleted`,
    );
  }
  return { retentionFull, lockDays };
}

/** A secret `pulumi up` needs besides the settings, and where it may come from. */
interface Credential {
  /** The full config key, e.g. digitalocean:token. */
  readonly key: string;
  /** Environment variables the provider reads instead of the key. */
  readonly environment: readonly string[];
  readonly why: string;
  readonly how: string;
}

const CREDENTIALS: readonly Credential[] = [
  {
    key: "keel:sshPrivateKey",
    environment: [],
    why: "Pulumi provisions the server over SSH with it",
    how: "`pulumi config set --secret keel:sshPrivateKey < ~/.ssh/keel_ed25519`",
  },
  {
    // Even with keel:existingHost: the uptime check is a DigitalOcean resource.
    key: "digitalocean:token",
    environment: ["DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"],
    why: "DigitalOcean creates the droplet and the uptime check with it",
    how: "`pulumi config set --secret digitalocean:token` (or export DIGITALOCEAN_TOKEN)",
  },
  {
    key: "cloudflare:apiToken",
    environment: ["CLOUDFLARE_API_TOKEN"],
    why: "Cloudflare creates the DNS records and the R2 bucket with it",
    how: "`pulumi config set --secret cloudflare:apiToken` (or export CLOUDFLARE_API_TOKEN)",
  },
];

/** The problem of a credential that is not set, e.g. keel:sshPrivateKey. */
export function missingCredential(key: string): ConfigProblem {
  const credential = CREDENTIALS.find((c) => c.key === key);
  if (credential === undefined) throw new Error(`${key} is not a credential Keel needs`);
  return {
    key: key.replace(/^keel:/, ""),
    message: `${key} is required: ${credential.why}; set it with ${credential.how}`,
  };
}

/**
 * The credentials `pulumi up` needs that are not set: `isSet` tells whether a full config key
 * is set in the stack; a provider's environment variable counts too.
 */
export function checkCredentials(
  isSet: (key: string) => boolean,
  environment: Readonly<Record<string, string | undefined>>,
): ConfigProblem[] {
  return CREDENTIALS.filter(
    (c) => !isSet(c.key) && !c.environment.some((name) => (environment[name] ?? "") !== ""),
  ).map((c) => missingCredential(c.key));
}

/** Validates raw config values and throws one ConfigError naming every problem. */
export function parseSettings(raw: RawConfig, options: RuleOptions = {}): Settings {
  const { settings, problems } = checkSettings(raw, options);
  if (problems.length > 0) throw new ConfigError(problems);
  return settings;
}
