// The URLs the local evidence store (EVIDENCE_LOCAL_DIR) signs: PUT receives an upload, GET
// serves a download. The signature in the query is the only credential; both are mounted before
// the JSON body parser because they carry raw bytes.
import { pipeline } from "node:stream/promises";
import type { Express } from "express";
import { recordAudit } from "../audit";
import type { Database } from "../database";
import { notFound } from "../errors";
import { contentDisposition } from "../storage/evidence-store";
import { LOCAL_EVIDENCE_PATH, type LocalEvidenceStore } from "../storage/local-store";

export function mountLocalEvidence(app: Express, store: LocalEvidenceStore, db: Database): void {
  app.put(LOCAL_EVIDENCE_PATH, async (req, res) => {
    const upload = store.verifyUpload(req.query, {
      checksum: req.get("x-amz-checksum-sha256"),
      contentType: req.get("content-type"),
    });
    await store.receive(upload, req);
    // Keys are evidence/<org id>/<evidence id>; the signed link is the only credential.
    const [, orgId, evidenceId] = upload.key.split("/");
    await recordAudit(db, req, {
      action: "evidence.upload",
      orgId: orgId ?? null,
      target: { type: "evidence", id: evidenceId ?? upload.key },
      details: { size: upload.size },
      actor: { type: "anonymous", id: null },
    });
    res.status(200).end();
  });

  app.get(LOCAL_EVIDENCE_PATH, async (req, res) => {
    const download = store.verifyDownload(req.query);
    const object = await store.open(download.key);
    if (object === null) throw notFound("evidence file");
    res.set({
      "Content-Type": download.contentType,
      "Content-Length": String(object.size),
      "Content-Disposition": contentDisposition(download.filename),
      "Cache-Control": "private, no-store",
    });
    try {
      await pipeline(object.stream, res);
    } catch (error) {
      // A client that goes away mid-download is not an error of ours.
      if (!res.destroyed) throw error;
      req.log.debug({ err: error }, "download closed by the client");
    }
  });
}
