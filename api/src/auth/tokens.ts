// Access tokens: HS256 JWTs signed with JWT_SECRET, valid for 15 minutes.
import { SignJWT, jwtVerify } from "jose";

const ISSUER = "keel";
const AUDIENCE = "keel-api";
export const ACCESS_TOKEN_SECONDS = 15 * 60;

export interface AccessTokenClaims {
  readonly userId: string;
  readonly orgId: string;
}

export class TokenSigner {
  private readonly key: Uint8Array;

  constructor(secret: string) {
    this.key = new TextEncoder().encode(secret);
  }

  sign(claims: AccessTokenClaims): Promise<string> {
    return new SignJWT({ org: claims.orgId })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(claims.userId)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${ACCESS_TOKEN_SECONDS}s`)
      .sign(this.key);
  }

  /** The token's claims, or null when it is malformed, forged or expired. */
  async verify(token: string): Promise<AccessTokenClaims | null> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ["HS256"],
      });
      if (typeof payload.sub !== "string" || typeof payload.org !== "string") return null;
      return { userId: payload.sub, orgId: payload.org };
    } catch {
      return null;
    }
  }
}

/** A compact JWS has three base64url parts; anything else presented as a bearer is an API key. */
export function looksLikeJwt(token: string): boolean {
  return /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token);
}
