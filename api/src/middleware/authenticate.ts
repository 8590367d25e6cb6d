// Who is calling. `identify` runs before the rate limiter (which counts per caller) and only
// records what the credentials say; `requireAuth` then enforces a route's needs:
// no credentials -> 401 with WWW-Authenticate; invalid, expired or revoked -> 403.
// Accepted: `X-API-Key: <key>`, `Authorization: Bearer <access token or API key>`.
import type { Request, RequestHandler } from "express";
import type { ApiKeyCache } from "../auth/api-key-cache";
import { looksLikeJwt, type TokenSigner } from "../auth/tokens";
import { forbidden, unauthorized } from "../errors";

export type Principal =
  | { readonly kind: "user"; readonly userId: string; readonly orgId: string }
  | { readonly kind: "api_key"; readonly keyId: string; readonly orgId: string };

/** "any": a user access token or an API key; "user": an access token only. */
export type AuthMode = "none" | "any" | "user";

type Credential = { kind: "token"; value: string } | { kind: "key"; value: string };

type CredentialState =
  | { readonly state: "none" }
  | { readonly state: "unsupported" }
  | { readonly state: "invalid" }
  | { readonly state: "valid"; readonly principal: Principal };

declare module "express-serve-static-core" {
  interface Request {
    credential?: CredentialState;
  }
}

// The longest credential worth looking at; anything longer is not ours.
const MAX_CREDENTIAL_LENGTH = 4096;

function readCredential(req: Request): Credential | "unsupported" | null {
  const apiKey = req.get("x-api-key");
  if (apiKey !== undefined && apiKey !== "") return { kind: "key", value: apiKey.trim() };
  const authorization = req.get("authorization");
  if (authorization === undefined || authorization === "") return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (match?.[1] === undefined) return "unsupported";
  const value = match[1];
  return looksLikeJwt(value) ? { kind: "token", value } : { kind: "key", value };
}

export function identify(apiKeys: ApiKeyCache, signer: TokenSigner): RequestHandler {
  return async (req, _res, next) => {
    const credential = readCredential(req);
    if (credential === null) {
      req.credential = { state: "none" };
    } else if (credential === "unsupported") {
      req.credential = { state: "unsupported" };
    } else if (credential.value.length > MAX_CREDENTIAL_LENGTH) {
      req.credential = { state: "invalid" };
    } else if (credential.kind === "token") {
      const claims = await signer.verify(credential.value);
      req.credential =
        claims === null
          ? { state: "invalid" }
          : { state: "valid", principal: { kind: "user", ...claims } };
    } else {
      const owner = await apiKeys.find(credential.value);
      req.credential =
        owner === null
          ? { state: "invalid" }
          : { state: "valid", principal: { kind: "api_key", ...owner } };
    }
    next();
  };
}

/** The caller, or the 401/403 error a route with `mode` must answer. */
export function requireAuth(req: Request, mode: Exclude<AuthMode, "none">): Principal {
  const credential = req.credential ?? { state: "none" };
  switch (credential.state) {
    case "none":
      throw unauthorized("Authentication required: send X-API-Key or Authorization: Bearer.");
    case "unsupported":
      throw unauthorized("Unsupported Authorization scheme: use Bearer.");
    case "invalid":
      throw forbidden("The credentials are invalid, expired or revoked.");
    case "valid":
      if (mode === "user" && credential.principal.kind !== "user") {
        throw forbidden("This endpoint needs a user access token (POST /v1/auth/login).");
      }
      return credential.principal;
  }
}

/** The rate-limit identity: the API key or user, else the client address. */
export function callerKey(req: Request): string | null {
  const credential = req.credential;
  if (credential?.state !== "valid") return null;
  const principal = credential.principal;
  return principal.kind === "user" ? `user:${principal.userId}` : `key:${principal.keyId}`;
}
