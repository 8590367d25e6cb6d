// The keys that sign and verify access tokens. The API signs with JWT_SECRET and names the key
// in each token's header (`kid`, derived from the key). In production it also accepts the keys
// of a ring file (JWT_KEYS_FILE) that the api step keeps: one line per key, `RETIRED_AT SECRET`,
// RETIRED_AT being `-` while an instance may still sign with the key, else the Unix time (s)
// when the last instance stopped signing with it. A retired key verifies tokens for one more
// access-token lifetime, so a rotation logs no one out; after that it is refused.
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";

/** How long an access token is valid, and so how long a retired key still verifies. */
export const ACCESS_TOKEN_SECONDS = 15 * 60;

export interface RingKey {
  readonly kid: string;
  readonly secret: string;
  /** Unix time in seconds when the key stopped signing; null while it may still sign. */
  readonly retiredAt: number | null;
}

/** The key id of a secret: public, and telling nothing about the secret. */
export function keyId(secret: string): string {
  return createHash("sha256").update(`keel-jwt-kid\0${secret}`).digest("base64url").slice(0, 16);
}

/** Parses a ring file; a malformed line is named by its number, never by its content. */
export function parseKeyRing(text: string): RingKey[] {
  const keys: RingKey[] = [];
  text.split("\n").forEach((line, index) => {
    if (line.trim() === "" || line.startsWith("#")) return;
    const match = /^(-|\d{1,12}) ([\x21-\x7e]{32,256})$/.exec(line);
    if (match?.[1] === undefined || match[2] === undefined) {
      throw new Error(`line ${index + 1} is not "RETIRED_AT SECRET"`);
    }
    keys.push({
      kid: keyId(match[2]),
      secret: match[2],
      retiredAt: match[1] === "-" ? null : Number(match[1]),
    });
  });
  return keys;
}

/** Whether a ring key still verifies tokens at `nowMs`. */
export function stillAccepted(key: RingKey, nowMs: number): boolean {
  return key.retiredAt === null || nowMs < (key.retiredAt + ACCESS_TOKEN_SECONDS) * 1000;
}

/**
 * A ring file, read at start-up (a bad file stops the API from starting) and read again when it
 * changes: checked at most once a second, and at once when a token names a key it lacks (a key
 * another instance already signs with). A bad file met later leaves the keys as they were.
 */
export class KeyRingFile {
  private keys: RingKey[];
  private version: string;
  private checkedAt: number;

  constructor(
    private readonly path: string,
    private readonly onReloadError: (error: unknown) => void,
  ) {
    this.version = this.currentVersion();
    this.keys = this.read();
    this.checkedAt = Date.now();
  }

  /** The keys accepted now; `refresh` checks the file at once. */
  accepted(refresh: boolean): RingKey[] {
    const now = Date.now();
    if (refresh || now - this.checkedAt >= 1000) {
      this.checkedAt = now;
      this.reloadIfChanged();
    }
    return this.keys.filter((key) => stillAccepted(key, now));
  }

  private currentVersion(): string {
    const stat = statSync(this.path);
    return `${stat.ino}:${stat.mtimeMs}:${stat.size}`;
  }

  private read(): RingKey[] {
    try {
      return parseKeyRing(readFileSync(this.path, "utf8"));
    } catch (error) {
      throw new Error(`JWT key ring ${this.path}: ${(error as Error).message}`, { cause: error });
    }
  }

  private reloadIfChanged(): void {
    try {
      const version = this.currentVersion();
      if (version === this.version) return;
      this.keys = this.read();
      this.version = version;
    } catch (error) {
      this.onReloadError(error);
    }
  }
}
