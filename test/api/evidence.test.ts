import { createHash, randomBytes } from "node:crypto";
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import {
  createAccount,
  createSystem,
  findRow,
  testApp,
  type Account,
  type ErrorBody,
} from "./support/app";
import { BUCKET, S3_KEY, testEnv } from "./support/environment";
import { presignedRequestIsValid } from "./support/sigv4";

interface Created {
  id: string;
  uploadUrl: string;
  method: string;
  headers: Record<string, string>;
  expiresAt: string;
  evidence: { status: string; size: number; sha256: string };
}

const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

async function objectExists(key: string): Promise<boolean> {
  const client = new S3Client({
    region: "auto",
    endpoint: testEnv().s3Endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_KEY },
  });
  try {
    await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    return true;
  } catch {
    return false;
  } finally {
    client.destroy();
  }
}

describe("evidence (presigned uploads to an S3-compatible store)", () => {
  let app: Express;
  let account: Account;
  let systemId: string;
  before(async () => {
    app = testApp();
    account = await createAccount(app);
    systemId = await createSystem(app, account.apiKey, { name: "Ledger", purpose: "Books" });
  });

  const declare = (file: { bytes: Buffer; filename?: string; contentType?: string }) =>
    request(app)
      .post(`/v1/systems/${systemId}/evidence`)
      .set("X-API-Key", account.apiKey)
      .send({
        filename: file.filename ?? "report.pdf",
        sha256: sha256(file.bytes),
        size: file.bytes.length,
        contentType: file.contentType ?? "application/pdf",
      })
      .expect(201)
      .then((response) => response.body as Created);

  const upload = (created: Created, body: Buffer, headers = created.headers) =>
    fetch(created.uploadUrl, { method: "PUT", headers, body });

  const complete = (id: string) =>
    request(app).post(`/v1/evidence/${id}/complete`).set("X-API-Key", account.apiKey);

  it("when evidence is declared, then the upload URL is a 1-hour presigned PUT that signs the SHA-256 header", async () => {
    const bytes = randomBytes(1024);
    const created = await declare({ bytes });
    const url = new URL(created.uploadUrl);
    expect(url.origin).to.equal(testEnv().s3Endpoint);
    expect(url.pathname).to.equal(`/${BUCKET}/evidence/${account.orgId}/${created.id}`);
    expect(url.searchParams.get("X-Amz-Expires")).to.equal("3600");
    expect(url.searchParams.get("X-Amz-SignedHeaders")?.split(";")).to.include.members([
      "content-type",
      "host",
      "x-amz-checksum-sha256",
    ]);
    expect(created.method).to.equal("PUT");
    expect(created.headers).to.deep.equal({
      "Content-Type": "application/pdf",
      "x-amz-checksum-sha256": createHash("sha256").update(bytes).digest("base64"),
    });
    const expiresIn = Date.parse(created.expiresAt) - Date.now();
    expect(expiresIn).to.be.within(3_500_000, 3_600_000);
    expect(
      await findRow("audit_events", { action: "audit.evidence.create", target_id: created.id }),
    ).to.include({ org_id: account.orgId });
  });

  it("when the real bytes are uploaded and completed, then it is verified, complete and downloadable", async () => {
    const bytes = Buffer.concat([Buffer.from("%PDF-1.7\n"), randomBytes(64 * 1024)]);
    const created = await declare({ bytes, filename: "rapport d'été.pdf" });
    const put = await upload(created, bytes);
    expect(put.status).to.equal(200);

    const done = await complete(created.id).expect(200);
    expect(done.body).to.include({ status: "complete", size: bytes.length, sha256: sha256(bytes) });
    expect((await findRow("evidence", { id: created.id }))?.status).to.equal("complete");

    const link = await request(app)
      .get(`/v1/evidence/${created.id}/download`)
      .set("X-API-Key", account.apiKey)
      .expect(200);
    const download = await fetch((link.body as { url: string }).url);
    expect(download.status).to.equal(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(bytes)).to.equal(true);
    expect(download.headers.get("content-disposition")).to.contain(
      "filename*=UTF-8''rapport%20d'%C3%A9t%C3%A9.pdf",
    );
    // Completing again is harmless.
    await complete(created.id).expect(200);
  });

  it("when the uploaded bytes do not match the declared SHA-256, then complete answers 409 and deletes the object", async () => {
    const declared = randomBytes(2048);
    const created = await declare({ bytes: declared });
    const impostor = Buffer.from(declared);
    impostor[0] = (impostor[0] ?? 0) ^ 0xff;
    expect((await upload(created, impostor)).status).to.equal(200);
    const key = `evidence/${account.orgId}/${created.id}`;
    expect(await objectExists(key)).to.equal(true);

    const response = await complete(created.id).expect(409);
    expect((response.body as ErrorBody).error.code).to.equal("upload_mismatch");
    expect((response.body as ErrorBody).error.message).to.contain("SHA-256");
    expect(await objectExists(key)).to.equal(false);
    expect((await findRow("evidence", { id: created.id }))?.status).to.equal("pending");

    // The declared file can still be uploaded with the same URL.
    expect((await upload(created, declared)).status).to.equal(200);
    await complete(created.id).expect(200);
  });

  it("when the size differs from the declared one, then complete answers 409 naming the size", async () => {
    const declared = randomBytes(4096);
    const created = await declare({ bytes: declared });
    expect((await upload(created, declared.subarray(0, 100))).status).to.equal(200);
    const response = await complete(created.id).expect(409);
    expect((response.body as ErrorBody).error.message).to.contain("size");
  });

  it("when a client changes the checksum or content type header, then the presigned signature no longer matches", async () => {
    // s3rver does not check V4 signatures; R2 and S3 do, exactly as computed here.
    const bytes = randomBytes(512);
    const created = await declare({ bytes });
    const valid = (headers: Record<string, string>) =>
      presignedRequestIsValid(created.uploadUrl, "PUT", headers, S3_KEY);
    expect(valid(created.headers)).to.equal(true);
    const otherChecksum = createHash("sha256").update("something else").digest("base64");
    expect(valid({ ...created.headers, "x-amz-checksum-sha256": otherChecksum })).to.equal(false);
    expect(valid({ ...created.headers, "Content-Type": "text/html" })).to.equal(false);
  });

  it("when nothing was uploaded yet, then complete answers 409 and download is refused", async () => {
    const created = await declare({ bytes: randomBytes(10) });
    const response = await complete(created.id).expect(409);
    expect((response.body as ErrorBody).error.code).to.equal("upload_missing");
    const download = await request(app)
      .get(`/v1/evidence/${created.id}/download`)
      .set("X-API-Key", account.apiKey)
      .expect(409);
    expect((download.body as ErrorBody).error.code).to.equal("evidence_incomplete");
  });

  it("when listed, then a system's evidence appears newest first", async () => {
    const first = await declare({
      bytes: randomBytes(8),
      filename: "a.txt",
      contentType: "text/plain",
    });
    const second = await declare({
      bytes: randomBytes(8),
      filename: "b.txt",
      contentType: "text/plain",
    });
    const list = await request(app)
      .get(`/v1/systems/${systemId}/evidence`)
      .query({ limit: 2 })
      .set("X-API-Key", account.apiKey)
      .expect(200);
    const ids = (list.body as { items: { id: string }[] }).items.map((e) => e.id);
    expect(ids).to.deep.equal([second.id, first.id]);
  });

  it("when another org asks for the evidence or the system, then every answer is 404", async () => {
    const created = await declare({ bytes: randomBytes(8) });
    const stranger = await createAccount(app);
    const declaration = {
      filename: "x",
      sha256: "0".repeat(64),
      size: 1,
      contentType: "text/plain",
    };
    const as = (path: string, method: "get" | "post" = "get") => {
      const agent = request(app);
      const call = method === "get" ? agent.get(path) : agent.post(path);
      return call.set("X-API-Key", stranger.apiKey).send(declaration);
    };
    await as(`/v1/evidence/${created.id}`).expect(404);
    await as(`/v1/evidence/${created.id}/complete`, "post").expect(404);
    await as(`/v1/evidence/${created.id}/download`).expect(404);
    await as(`/v1/systems/${systemId}/evidence`).expect(404);
    await as(`/v1/systems/${systemId}/evidence`, "post").expect(404);
  });

  it("when the declaration is invalid, then 400 names each bad field", async () => {
    const response = await request(app)
      .post(`/v1/systems/${systemId}/evidence`)
      .set("X-API-Key", account.apiKey)
      .send({
        filename: "../../etc/passwd\u0007",
        sha256: "xyz",
        size: 6 * 1024 ** 3,
        contentType: "pdf",
      })
      .expect(400);
    const paths = ((response.body as ErrorBody).error.details ?? []).map((d) => d.path);
    expect(paths).to.have.members([
      "body.filename",
      "body.sha256",
      "body.size",
      "body.contentType",
    ]);
  });
});
