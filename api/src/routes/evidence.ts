// Evidence files. Creating one returns a presigned PUT (1 hour) that carries the declared
// SHA-256; completing it verifies the stored object's size and checksum (409 and the object
// deleted on a mismatch); downloads are presigned GETs (15 minutes).
import { randomUUID } from "node:crypto";
import type { Request } from "express";
import { z } from "zod";
import { recordAudit } from "../audit";
import { ApiError, conflict, notFound } from "../errors";
import { verifyObject } from "../storage/evidence-store";
import type { RouteContext } from "./context";
import { defineRoute, type RouteDefinition } from "./define";
import { fetchPage } from "./pagination";
import { IdParams, Page, name, pageOf } from "./schemas";

const UPLOAD_URL_SECONDS = 60 * 60;
const DOWNLOAD_URL_SECONDS = 15 * 60;
/** The largest single PUT S3 and R2 accept. */
const MAX_EVIDENCE_BYTES = 5 * 1024 ** 3;

interface EvidenceRow {
  id: string;
  org_id: string;
  system_id: string;
  filename: string;
  content_type: string;
  size: string;
  sha256: string;
  object_key: string;
  status: "pending" | "complete";
  created_at: Date;
  completed_at: Date | null;
}

const Evidence = z
  .object({
    id: z.uuid(),
    systemId: z.uuid(),
    filename: z.string(),
    contentType: z.string(),
    size: z.number().int(),
    sha256: z.string().meta({ description: "Hex SHA-256 of the file." }),
    status: z.enum(["pending", "complete"]),
    createdAt: z.iso.datetime(),
    completedAt: z.iso.datetime().nullable(),
  })
  .meta({ id: "Evidence" });

const CreateEvidenceBody = z
  .strictObject({
    filename: name(255),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, "must be 64 hexadecimal characters")
      .transform((hex) => hex.toLowerCase()),
    size: z
      .number()
      .int("must be a whole number")
      .min(0, "must not be negative")
      .max(MAX_EVIDENCE_BYTES, `must be at most ${MAX_EVIDENCE_BYTES} bytes`),
    contentType: z
      .string()
      .max(255)
      .regex(/^[\w.+-]+\/[\w.+-]+$/, "must be a media type like application/pdf"),
  })
  .meta({ id: "CreateEvidenceRequest" });

const CreatedEvidence = z
  .object({
    id: z.uuid(),
    evidence: Evidence,
    uploadUrl: z.string(),
    method: z.literal("PUT"),
    headers: z.record(z.string(), z.string()).meta({
      description: "Send these headers with the PUT, exactly as given.",
    }),
    expiresAt: z.iso.datetime(),
  })
  .meta({ id: "CreatedEvidence" });

const Download = z
  .object({ url: z.string(), expiresAt: z.iso.datetime() })
  .meta({ id: "EvidenceDownload" });

const COLUMNS = [
  "id",
  "system_id",
  "filename",
  "content_type",
  "size",
  "sha256",
  "object_key",
  "status",
  "created_at",
  "completed_at",
] as const;

type EvidenceColumns = Pick<EvidenceRow, (typeof COLUMNS)[number]>;

function present(row: EvidenceColumns) {
  return {
    id: row.id,
    systemId: row.system_id,
    filename: row.filename,
    contentType: row.content_type,
    size: Number(row.size),
    sha256: row.sha256,
    status: row.status,
    createdAt: row.created_at.toISOString(),
    completedAt: row.completed_at?.toISOString() ?? null,
  };
}

/** scheme://host as the client reached the API (behind nginx: from X-Forwarded-Proto). */
const originOf = (req: Request): string => `${req.protocol}://${req.get("host") ?? "localhost"}`;

const expiresAt = (seconds: number): string => new Date(Date.now() + seconds * 1000).toISOString();

export function evidenceRoutes(ctx: RouteContext): RouteDefinition[] {
  const { db, store } = ctx;

  const findEvidence = async (id: string, orgId: string): Promise<EvidenceColumns> => {
    const row = await db<EvidenceRow>("evidence")
      .where({ id, org_id: orgId })
      .first(...COLUMNS);
    if (row === undefined) throw notFound("evidence");
    return row;
  };

  const assertSystem = async (id: string, orgId: string): Promise<void> => {
    const system = await db<{ id: string; org_id: string }>("systems")
      .where({ id, org_id: orgId })
      .first("id");
    if (system === undefined) throw notFound("system");
  };

  const create = defineRoute({
    method: "post",
    path: "/v1/systems/:id/evidence",
    operationId: "createEvidence",
    summary: "Register an evidence file and get a presigned upload URL (valid 1 hour)",
    description:
      "Registers an evidence file (name, size, SHA-256, media type) and returns a presigned URL: PUT the file there with exactly the given headers within 1 hour, then call completeEvidence.",
    tag: "evidence",
    auth: "any",
    expensive: true,
    params: IdParams,
    body: CreateEvidenceBody,
    responses: { 201: { description: "Upload the file to uploadUrl.", schema: CreatedEvidence } },
    handler: async ({ req, res, params, body, principal }) => {
      await assertSystem(params.id, principal.orgId);
      const id = randomUUID();
      const key = `evidence/${principal.orgId}/${id}`;
      const upload = await store.presignUpload({
        key,
        contentType: body.contentType,
        size: body.size,
        sha256Hex: body.sha256,
        origin: originOf(req),
        expiresInSeconds: UPLOAD_URL_SECONDS,
      });
      const row = await db.transaction(async (trx) => {
        const [inserted] = await trx<EvidenceRow>("evidence")
          .insert({
            id,
            org_id: principal.orgId,
            system_id: params.id,
            filename: body.filename,
            content_type: body.contentType,
            size: String(body.size),
            sha256: body.sha256,
            object_key: key,
          })
          .returning(COLUMNS);
        if (inserted === undefined) throw new Error("insert returned no row");
        await recordAudit(trx, req, {
          action: "evidence.create",
          orgId: principal.orgId,
          target: { type: "evidence", id },
          details: { systemId: params.id, size: body.size },
        });
        return inserted;
      });
      res.status(201).json({
        id,
        evidence: present(row),
        uploadUrl: upload.url,
        method: upload.method,
        headers: upload.headers,
        expiresAt: expiresAt(UPLOAD_URL_SECONDS),
      });
    },
  });

  const list = defineRoute({
    method: "get",
    path: "/v1/systems/:id/evidence",
    operationId: "listEvidence",
    summary: "List a system's evidence, newest first",
    description: "Lists a system's evidence, newest first, a page at a time.",
    tag: "evidence",
    auth: "any",
    params: IdParams,
    query: Page,
    responses: { 200: { description: "A page of evidence.", schema: pageOf(Evidence) } },
    handler: async ({ res, params, query, principal }) => {
      await assertSystem(params.id, principal.orgId);
      const page = await fetchPage<EvidenceRow, ReturnType<typeof present>>(
        db,
        db("evidence").where({ system_id: params.id, org_id: principal.orgId }),
        query,
        COLUMNS,
        present,
      );
      res.json(page);
    },
  });

  const get = defineRoute({
    method: "get",
    path: "/v1/evidence/:id",
    operationId: "getEvidence",
    summary: "Get an evidence file's record",
    description: "Gets one evidence record of the org.",
    tag: "evidence",
    auth: "any",
    params: IdParams,
    responses: { 200: { description: "The evidence.", schema: Evidence } },
    handler: async ({ res, params, principal }) => {
      res.json(present(await findEvidence(params.id, principal.orgId)));
    },
  });

  const complete = defineRoute({
    method: "post",
    path: "/v1/evidence/:id/complete",
    operationId: "completeEvidence",
    summary: "Verify the uploaded file's size and SHA-256 and mark the evidence complete",
    description:
      "Checks the uploaded file's size and SHA-256 against the declared ones and marks the evidence complete. 409 upload_missing: nothing uploaded yet; 409 upload_mismatch: the upload differed and was deleted. Completing twice returns the record.",
    tag: "evidence",
    auth: "any",
    params: IdParams,
    responses: {
      200: { description: "Verified and complete.", schema: Evidence },
      409: { description: "Not uploaded yet, or the upload did not match (and was deleted)." },
    },
    handler: async ({ req, res, params, principal }) => {
      const row = await findEvidence(params.id, principal.orgId);
      if (row.status === "complete") {
        res.json(present(row));
        return;
      }
      const result = await verifyObject(store, row.object_key, {
        size: Number(row.size),
        sha256Hex: row.sha256,
      });
      if (!result.ok) {
        if (result.reason === "missing") {
          throw conflict("upload_missing", "Nothing has been uploaded for this evidence yet.");
        }
        await store.delete(row.object_key);
        await recordAudit(db, req, {
          action: "evidence.reject",
          orgId: principal.orgId,
          target: { type: "evidence", id: row.id },
          details: { reason: result.reason },
        });
        throw conflict(
          "upload_mismatch",
          `The uploaded file's ${result.reason === "size" ? "size" : "SHA-256"} does not match ` +
            "what was declared; it was deleted. Upload the declared file again.",
        );
      }
      const updated = await db.transaction(async (trx) => {
        const [done] = await trx<EvidenceRow>("evidence")
          .where({ id: row.id })
          .update({ status: "complete", completed_at: trx.fn.now() })
          .returning(COLUMNS);
        if (done === undefined) throw new Error("update returned no row");
        await recordAudit(trx, req, {
          action: "evidence.complete",
          orgId: principal.orgId,
          target: { type: "evidence", id: row.id },
        });
        return done;
      });
      res.json(present(updated));
    },
  });

  const download = defineRoute({
    method: "get",
    path: "/v1/evidence/:id/download",
    operationId: "getEvidenceDownload",
    summary: "Get a presigned download URL (valid 15 minutes)",
    description:
      "Returns a presigned GET URL for a complete evidence file, valid 15 minutes. 409 evidence_incomplete until it is complete.",
    tag: "evidence",
    auth: "any",
    expensive: true,
    params: IdParams,
    responses: {
      200: { description: "Download from url.", schema: Download },
      409: { description: "The evidence is not complete yet." },
    },
    handler: async ({ req, res, params, principal }) => {
      const row = await findEvidence(params.id, principal.orgId);
      if (row.status !== "complete") {
        throw new ApiError(409, "evidence_incomplete", "Complete the upload before downloading.");
      }
      const url = await store.presignDownload({
        key: row.object_key,
        filename: row.filename,
        contentType: row.content_type,
        origin: originOf(req),
        expiresInSeconds: DOWNLOAD_URL_SECONDS,
      });
      res.json({ url, expiresAt: expiresAt(DOWNLOAD_URL_SECONDS) });
    },
  });

  return [create, list, get, complete, download];
}
