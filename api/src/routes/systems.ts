// Systems: the things evidence and events are about. Scoped to the caller's org; another org's
// id answers 404 exactly like an id that does not exist.
import { z } from "zod";
import { recordAudit } from "../audit";
import { notFound } from "../errors";
import type { RouteContext } from "./context";
import { defineRoute, type RouteDefinition } from "./define";
import { fetchPage } from "./pagination";
import { IdParams, Page, name, pageOf } from "./schemas";

export interface SystemRow {
  id: string;
  org_id: string;
  name: string;
  purpose: string;
  created_at: Date;
}

const System = z
  .object({ id: z.uuid(), name: z.string(), purpose: z.string(), createdAt: z.iso.datetime() })
  .meta({ id: "System" });

const CreateSystemBody = z
  .strictObject({
    name: name(200),
    purpose: z
      .string()
      .trim()
      .min(1, "must not be empty")
      .max(2000, "must be at most 2000 characters")
      // Said for the document: after trimming, min(1) already means the same.
      .regex(/\S/, "must not be blank"),
  })
  .meta({ id: "CreateSystemRequest" });

export const SYSTEM_COLUMNS = ["id", "name", "purpose", "created_at"] as const;

export function presentSystem(row: Pick<SystemRow, (typeof SYSTEM_COLUMNS)[number]>) {
  return {
    id: row.id,
    name: row.name,
    purpose: row.purpose,
    createdAt: row.created_at.toISOString(),
  };
}

export function systemRoutes(ctx: RouteContext): RouteDefinition[] {
  const { db } = ctx;

  const create = defineRoute({
    method: "post",
    path: "/v1/systems",
    operationId: "createSystem",
    summary: "Create a system",
    description: "Creates a system (something evidence and events are about) in the caller's org.",
    tag: "systems",
    auth: "any",
    body: CreateSystemBody,
    responses: { 201: { description: "The system.", schema: System } },
    handler: async ({ req, res, body, principal }) => {
      const row = await db.transaction(async (trx) => {
        const [inserted] = await trx<SystemRow>("systems")
          .insert({ org_id: principal.orgId, name: body.name, purpose: body.purpose })
          .returning(SYSTEM_COLUMNS);
        if (inserted === undefined) throw new Error("insert returned no row");
        await recordAudit(trx, req, {
          action: "system.create",
          orgId: principal.orgId,
          target: { type: "system", id: inserted.id },
        });
        return inserted;
      });
      res.status(201).json(presentSystem(row));
    },
  });

  const list = defineRoute({
    method: "get",
    path: "/v1/systems",
    operationId: "listSystems",
    summary: "List systems, newest first",
    description:
      "Lists the org's systems, newest first, a page at a time: pass nextCursor as cursor for the next page.",
    tag: "systems",
    auth: "any",
    query: Page,
    responses: { 200: { description: "A page of systems.", schema: pageOf(System) } },
    handler: async ({ res, query, principal }) => {
      const page = await fetchPage<SystemRow, ReturnType<typeof presentSystem>>(
        db,
        db("systems").where({ org_id: principal.orgId }),
        query,
        SYSTEM_COLUMNS,
        presentSystem,
      );
      res.json(page);
    },
  });

  const get = defineRoute({
    method: "get",
    path: "/v1/systems/:id",
    operationId: "getSystem",
    summary: "Get a system",
    description: "Gets one of the org's systems; another org's id answers 404 as an unknown one.",
    tag: "systems",
    auth: "any",
    params: IdParams,
    responses: { 200: { description: "The system.", schema: System } },
    handler: async ({ res, params, principal }) => {
      const row = await db<SystemRow>("systems")
        .where({ id: params.id, org_id: principal.orgId })
        .first(...SYSTEM_COLUMNS);
      if (row === undefined) throw notFound("system");
      res.json(presentSystem(row));
    },
  });

  return [create, list, get];
}
