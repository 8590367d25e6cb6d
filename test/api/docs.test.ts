import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { testApp } from "./support/app";

interface Document {
  openapi: string;
  paths: Record<string, Record<string, { security?: unknown[] }>>;
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
});
