import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { servedDocument } from "../../api/openapi/document";
import { SINGLE_LINE } from "../../api/src/routes/schemas";
import { createAccount, testApp } from "./support/app";

interface Operation {
  operationId?: string;
  security?: Record<string, unknown>[];
  responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
}

interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<
      string,
      { properties?: Record<string, { minLength?: number; maxItems?: number }>; maxItems?: number }
    >;
    securitySchemes: Record<string, unknown>;
  };
}

describe("GET /docs", () => {
  let app: Express;
  let doc: Document;
  before(async () => {
    app = testApp();
    doc = (await request(app).get("/docs").expect(200)).body as Document;
  });

  it("when fetched, then it is an OpenAPI 3 document listing every endpoint", () => {
    expect(doc.openapi).to.match(/^3\.0\./);
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations).to.have.members([
      "GET /docs",
      "GET /metrics",
      "GET /health",
      "GET /ready",
      "POST /v1/auth/register",
      "POST /v1/auth/login",
      "POST /v1/api-keys",
      "GET /v1/api-keys",
      "DELETE /v1/api-keys/{id}",
      "POST /v1/systems",
      "GET /v1/systems",
      "GET /v1/systems/{id}",
      "POST /v1/systems/{id}/evidence",
      "GET /v1/systems/{id}/evidence",
      "GET /v1/evidence/{id}",
      "POST /v1/evidence/{id}/complete",
      "GET /v1/evidence/{id}/download",
      "POST /v1/events",
      "GET /v1/events/stats",
    ]);
    expect(Object.keys(doc.components.securitySchemes)).to.have.members([
      "bearerAuth",
      "apiKeyBearer",
      "apiKeyHeader",
    ]);
  });

  it("when compared with validation, then the documented rules are the enforced ones", async () => {
    const register = doc.components.schemas.RegisterRequest;
    expect(register?.properties?.password?.minLength).to.equal(12);
    expect(doc.components.schemas.EventBatch?.maxItems).to.equal(1000);
    // And the API does refuse an 11-character password.
    await request(app)
      .post("/v1/auth/register")
      .send({ email: "docs@example.test", password: "x".repeat(11), orgName: "o" })
      .expect(400);
  });

  const operations = () => Object.values(doc.paths).flatMap((methods) => Object.values(methods));

  it("when the linters' copy is built without servers, then it is exactly the document served", () => {
    expect(JSON.parse(JSON.stringify(servedDocument()))).to.deep.equal(doc);
  });

  it("when listed, then every operation has its own operationId", () => {
    const ids = operations().map((operation) => operation.operationId);
    expect(ids.every((id) => typeof id === "string" && /^[a-z][A-Za-z]+$/.test(id))).to.equal(true);
    expect(new Set(ids).size).to.equal(ids.length);
  });

  it("when a name's pattern is read as a client would (no flags), then it accepts real names and refuses control characters and blanks", () => {
    const patterns = new Set(
      [
        "RegisterRequest",
        "CreateApiKeyRequest",
        "CreateSystemRequest",
        "CreateEvidenceRequest",
      ].map((id) => {
        const properties = doc.components.schemas[id]?.properties as Record<
          string,
          { pattern?: string }
        >;
        return (
          properties.orgName?.pattern ?? properties.name?.pattern ?? properties.filename?.pattern
        );
      }),
    );
    expect([...patterns]).to.deep.equal([SINGLE_LINE.source]);
    const pattern = new RegExp(SINGLE_LINE.source);
    for (const good of ["Acme Ltd", "report (final).pdf", "Zürich – 東京"]) {
      expect(pattern.test(good), good).to.equal(true);
    }
    for (const bad of ["a\u0007b", "tab\there", "\u0085", "   ", ""]) {
      expect(pattern.test(bad), JSON.stringify(bad)).to.equal(false);
    }
  });

  it("when the probes are described, then /ready's 503 is the Readiness body and neither documents 429", () => {
    const ready = doc.paths["/ready"]?.get;
    expect(ready?.responses["503"]?.content?.["application/json"]?.schema.$ref).to.equal(
      "#/components/schemas/Readiness",
    );
    expect(Object.keys(doc.paths["/health"]?.get?.responses ?? {})).to.deep.equal(["200"]);
    expect(Object.keys(ready?.responses ?? {})).to.have.members(["200", "503"]);
  });

  it("when an operation needs a user, then the document offers only the access token, and an API key sent as Bearer gets the documented 403", async () => {
    expect(doc.paths["/v1/api-keys"]?.get?.security).to.deep.equal([{ bearerAuth: [] }]);
    const account = await createAccount(app);
    await request(app)
      .get("/v1/api-keys")
      .set("Authorization", `Bearer ${account.apiKey}`)
      .expect(403);
  });

  it("when a route without a body is sent one, then it is ignored rather than refused", async () => {
    const account = await createAccount(app);
    await request(app)
      .get("/v1/systems")
      .set("X-API-Key", account.apiKey)
      .set("Content-Type", "text/plain")
      .send("not json")
      .expect(200);
  });
});
