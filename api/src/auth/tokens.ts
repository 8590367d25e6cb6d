// Access tokens: HS256 JWTs signed with JWT_SECRET, valid for 15 minutes. Each names its key
// (`kid`); tokens are verified with the key they name, among JWT_SECRET and the ring's keys
// still accepted (key-ring.ts), so a rotated key keeps its tokens valid for their lifetime.
// A token once verified is remembered until it expires, so a busy client pays for the HMAC once;
// every use still checks its expiry and that its key is still accepted.
import { SignJWT, decodeProtectedHeader, jwtVerify } from "jose";
import { LRUCache } from "lru-cache";
import { ACCESS_TOKEN_SECONDS, keyId, type KeyRingFile } from "./key-ring";

export { ACCESS_TOKEN_SECONDS } from "./key-ring";

const ISSUER = "keel";
const AUDIENCE = "keel-api";
const encoder = new TextEncoder();

export interface AccessTokenClaims {
  readonly userId: string;
  readonly orgId: string;
}

interface VerifiedToken {
  readonly claims: AccessTokenClaims;
  readonly kid: string | undefined;
  readonly expiresAtMs: number;
}

const MAX_REMEMBERED_TOKENS = 10_000;

export class TokenSigner {
  private readonly key: Uint8Array;
  private readonly kid: string;
  private readonly verified = new LRUCache<string, VerifiedToken>({ max: MAX_REMEMBERED_TOKENS });

  /** `ring`: further keys to verify with (JWT_KEYS_FILE); none in development and tests. */
  constructor(
    secret: string,
    private readonly ring?: KeyRingFile,
  ) {
    this.key = encoder.encode(secret);
    this.kid = keyId(secret);
  }

  sign(claims: AccessTokenClaims): Promise<string> {
    return new SignJWT({ org: claims.orgId })
      .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: this.kid })
      .setSubject(claims.userId)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${ACCESS_TOKEN_SECONDS}s`)
      .sign(this.key);
  }

  /**
   * The key a token names: JWT_SECRET's, or a ring key still accepted. A token without `kid`
   * (signed by a release before key ids) is tried with JWT_SECRET.
   */
  private keyFor(kid: string | undefined): Uint8Array | undefined {
    if (kid === undefined || kid === this.kid) return this.key;
    if (this.ring === undefined) return undefined;
    const find = (refresh: boolean) => this.ring?.accepted(refresh).find((k) => k.kid === kid);
    const found = find(false) ?? find(true);
    return found === undefined ? undefined : encoder.encode(found.secret);
  }

  /** The token's claims, or null when it is malformed, forged, expired or its key retired. */
  async verify(token: string): Promise<AccessTokenClaims | null> {
    const remembered = this.verified.get(token);
    if (remembered !== undefined) {
      if (Date.now() < remembered.expiresAtMs && this.keyFor(remembered.kid) !== undefined) {
        return remembered.claims;
      }
      this.verified.delete(token);
      return null;
    }
    try {
      const { kid } = decodeProtectedHeader(token);
      const key = this.keyFor(kid);
      if (key === undefined) return null;
      const { payload } = await jwtVerify(token, key, {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ["HS256"],
      });
      if (typeof payload.sub !== "string" || typeof payload.org !== "string") return null;
      const claims = { userId: payload.sub, orgId: payload.org };
      if (typeof payload.exp === "number") {
        this.verified.set(token, { claims, kid, expiresAtMs: payload.exp * 1000 });
      }
      return claims;
    } catch {
      return null;
    }
  }
}

/** A compact JWS has three base64url parts; anything else presented as a bearer is an API key. */
export function looksLikeJwt(token: string): boolean {
  return /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token);
}
