// API keys: 32 random bytes behind a recognisable prefix. Only a SHA-256 hash is stored (a key
// has full entropy, so a fast hash is enough and keeps the per-request lookup cheap).
import { createHash, randomBytes } from "node:crypto";

const KEY_PREFIX = "keel_";

/** Characters of a key shown in listings so people can tell keys apart. */
const DISPLAY_PREFIX_LENGTH = 9;

export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(32).toString("base64url");
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

export function displayPrefix(key: string): string {
  return key.slice(0, DISPLAY_PREFIX_LENGTH);
}
