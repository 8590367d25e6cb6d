// API keys of the caller's org, managed with a user access token. A new key is shown once, in
// the response that creates it; only its hash is stored. Revocation takes effect at once: every
// request looks the key up.
import { z } from "zod";
import { displayPrefix, generateApiKey, hashApiKey } from "../auth/api-keys";
import { recordAudit } from "../audit";
import { notFound } from "../errors";
import type { RouteContext } from "./context";
import { defineRoute, type RouteDefinition } from "./define";
import { IdParams, name } from "./schemas";

interface ApiKeyRow {
  id: string;
  org_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  is_bootstrap: boolean;
  created_by: string | null;
  created_at: Date;
  revoked_at: Date | null;
}

const ApiKey = z
  .object({
    id: z.uuid(),
    name: z.string(),
    prefix: z.string().meta({ description: "The key's first characters, to tell keys apart." }),
    bootstrap: z.boolean().meta({ description: "The operator's BOOTSTRAP_API_KEY." }),
    createdAt: z.iso.datetime(),
    revokedAt: z.iso.datetime().nullable(),
  })
  .meta({ id: "ApiKey" });

const CreatedApiKey = ApiKey.extend({
  key: z.string().meta({ description: "The key itself. Shown only in this response." }),
}).meta({ id: "CreatedApiKey" });

const CreateApiKeyBody = z.strictObject({ name: name(100) }).meta({ id: "CreateApiKeyRequest" });

const COLUMNS = ["id", "name", "prefix", "is_bootstrap", "created_at", "revoked_at"] as const;

function present(row: Pick<ApiKeyRow, (typeof COLUMNS)[number]>) {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    bootstrap: row.is_bootstrap,
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at?.toISOString() ?? null,
  };
}

export function apiKeyRoutes(ctx: RouteContext): RouteDefinition[] {
  const { db, apiKeys } = ctx;

  const create = defineRoute({
    method: "post",
    path: "/v1/api-keys",
    operationId: "createApiKey",
    summary: "Create an API key for your org",
    description:
      "Creates an API key for the caller's org. The key is in this response only; the API keeps its SHA-256.",
    tag: "api-keys",
    auth: "user",
    body: CreateApiKeyBody,
    responses: { 201: { description: "The key, shown once.", schema: CreatedApiKey } },
    handler: async ({ req, res, body, principal }) => {
      const key = generateApiKey();
      const row = await db.transaction(async (trx) => {
        const [inserted] = await trx<ApiKeyRow>("api_keys")
          .insert({
            org_id: principal.orgId,
            name: body.name,
            prefix: displayPrefix(key),
            key_hash: hashApiKey(key),
            created_by: principal.kind === "user" ? principal.userId : null,
          })
          .returning(COLUMNS);
        if (inserted === undefined) throw new Error("insert returned no row");
        await recordAudit(trx, req, {
          action: "api_key.create",
          orgId: principal.orgId,
          target: { type: "api_key", id: inserted.id },
        });
        return inserted;
      });
      res.status(201).json({ ...present(row), key });
    },
  });

  const list = defineRoute({
    method: "get",
    path: "/v1/api-keys",
    operationId: "listApiKeys",
    summary: "List your org's API keys (never the keys themselves)",
    description:
      "Lists the org's API keys, revoked ones included, newest first; never the keys themselves.",
    tag: "api-keys",
    auth: "user",
    responses: { 200: { description: "The keys.", schema: z.object({ items: z.array(ApiKey) }) } },
    handler: async ({ res, principal }) => {
      const rows = await db<ApiKeyRow>("api_keys")
        .where({ org_id: principal.orgId })
        .orderBy([
          { column: "created_at", order: "desc" },
          { column: "id", order: "desc" },
        ])
        .select(...COLUMNS);
      res.json({ items: rows.map(present) });
    },
  });

  const revoke = defineRoute({
    method: "delete",
    path: "/v1/api-keys/:id",
    operationId: "revokeApiKey",
    summary: "Revoke an API key; it stops working at once",
    description:
      "Revokes an API key of the caller's org; requests with it are refused from then on. Revoking it again changes nothing.",
    tag: "api-keys",
    auth: "user",
    params: IdParams,
    responses: { 204: { description: "Revoked (or already revoked)." } },
    handler: async ({ req, res, params, principal }) => {
      const keyId = await db.transaction(async (trx) => {
        const key = await trx<ApiKeyRow>("api_keys")
          .where({ id: params.id, org_id: principal.orgId })
          .forUpdate()
          .first("id", "revoked_at");
        if (key === undefined) throw notFound("API key");
        if (key.revoked_at !== null) return key.id;
        await trx("api_keys").where({ id: key.id }).update({ revoked_at: trx.fn.now() });
        await recordAudit(trx, req, {
          action: "api_key.revoke",
          orgId: principal.orgId,
          target: { type: "api_key", id: key.id },
        });
        return key.id;
      });
      await apiKeys.revoked(keyId);
      res.status(204).end();
    },
  });

  return [create, list, revoke];
}
