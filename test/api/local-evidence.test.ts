import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { LocalEvidenceStore } from "../../api/src/storage/local-store";
import {
  JWT_SECRET,
  createAccount,
  createSystem,
  findRow,
  testApp,
  type Account,
  type ErrorBody,
} from "./support/app";
import { testEnv } from "./support/environment";

interface Created {
  id: string;
  uploadUrl: string;
  headers: Record<string, string>;
}

const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

// supertest wants a path; the URL the API signed names the host it was reached at.
const pathOf = (url: string): string => {
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
};

describe("evidence on local disk (EVIDENCE_LOCAL_DIR)", () => {
  let app: Express;
  let dir: string;
  let store: LocalEvidenceStore;
  let account: Account;
  let systemId: string;
  before(async () => {
    dir = mkdtempSync(join(testEnv().tmp, "evidence-"));
    store = new LocalEvidenceStore(dir, JWT_SECRET);
    app = testApp({ env: { EVIDENCE_LOCAL_DIR: dir }, store });
    account = await createAccount(app);
    systemId = await createSystem(app, account.apiKey, { name: "Local", purpose: "Development" });
  });

  const declare = async (bytes: Buffer): Promise<Created> => {
    const response = await request(app)
      .post(`/v1/systems/${systemId}/evidence`)
      .set("X-API-Key", account.apiKey)
      .set("Host", "api.example.test")
      .set("X-Forwarded-Proto", "https")
      .send({
        filename: "notes.txt",
        sha256: sha256(bytes),
        size: bytes.length,
        contentType: "text/plain",
      })
      .expect(201);
    return response.body as Created;
  };

  const put = (created: Created, body: Buffer, headers = created.headers) =>
    request(app).put(pathOf(created.uploadUrl)).set(headers).send(body);

  it("when evidence is declared, then the upload URL points at the API itself, signed and expiring", async () => {
    const created = await declare(randomBytes(16));
    const url = new URL(created.uploadUrl);
    expect(url.origin).to.equal("https://api.example.test");
    expect(url.pathname).to.equal("/v1/local-evidence");
    expect(Number(url.searchParams.get("expires")) - Date.now() / 1000).to.be.within(3500, 3600);
    expect(url.searchParams.get("signature")).to.match(/^[A-Za-z0-9_-]{43}$/);
  });

  it("when the right bytes are uploaded, then complete verifies them and the download link serves them", async () => {
    const bytes = randomBytes(32 * 1024);
    const created = await declare(bytes);
    await put(created, bytes).expect(200);
    expect(
      await findRow("audit_events", { action: "audit.evidence.upload", target_id: created.id }),
    ).to.include({ org_id: account.orgId, actor_type: "anonymous" });
    await request(app)
      .post(`/v1/evidence/${created.id}/complete`)
      .set("X-API-Key", account.apiKey)
      .expect(200);
    const link = await request(app)
      .get(`/v1/evidence/${created.id}/download`)
      .set("X-API-Key", account.apiKey)
      .expect(200);
    const download = await request(app)
      .get(pathOf((link.body as { url: string }).url))
      .buffer(true)
      .parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => done(null, Buffer.concat(chunks)));
      })
      .expect(200);
    expect((download.body as Buffer).equals(bytes)).to.equal(true);
    expect(download.get("Content-Disposition")).to.contain('filename="notes.txt"');
  });

  it("when the body does not match the signed checksum, then 400 and nothing is stored", async () => {
    const bytes = randomBytes(1024);
    const created = await declare(bytes);
    const response = await put(created, randomBytes(1024)).expect(400);
    expect((response.body as ErrorBody).error.code).to.equal("bad_digest");
    const complete = await request(app)
      .post(`/v1/evidence/${created.id}/complete`)
      .set("X-API-Key", account.apiKey)
      .expect(409);
    expect((complete.body as ErrorBody).error.code).to.equal("upload_missing");
  });

  it("when the body is larger than declared, then 413", async () => {
    const bytes = randomBytes(100);
    const created = await declare(bytes);
    await put(created, Buffer.concat([bytes, randomBytes(100)])).expect(413);
  });

  it("when the signature, the checksum header or the expiry is wrong, then 403", async () => {
    const bytes = randomBytes(64);
    const created = await declare(bytes);
    const tampered = created.uploadUrl.replace(/size=\d+/, "size=999999");
    await request(app).put(pathOf(tampered)).set(created.headers).send(bytes).expect(403);
    await put(created, bytes, { "Content-Type": "text/plain" }).expect(403);
    const expired = await store.presignUpload({
      key: `evidence/${account.orgId}/${created.id}`,
      contentType: "text/plain",
      size: bytes.length,
      sha256Hex: sha256(bytes),
      origin: "http://localhost",
      expiresInSeconds: -1,
    });
    const response = await request(app)
      .put(pathOf(expired.url))
      .set(expired.headers)
      .send(bytes)
      .expect(403);
    expect((response.body as ErrorBody).error.code).to.equal("invalid_signature");
  });

  it("when the store keeps a checksum, then complete checks against it", async () => {
    const bytes = randomBytes(256);
    const created = await declare(bytes);
    await put(created, bytes).expect(200);
    const object = join(dir, "evidence", account.orgId, created.id);
    expect(readFileSync(`${object}.sha256`, "utf8")).to.equal(sha256(bytes));
    // Make the kept checksum disagree: only a store-checksum comparison can notice.
    writeFileSync(`${object}.sha256`, sha256(Buffer.from("other")));
    await request(app)
      .post(`/v1/evidence/${created.id}/complete`)
      .set("X-API-Key", account.apiKey)
      .expect(409);
    expect(existsSync(object)).to.equal(false);
  });
});
