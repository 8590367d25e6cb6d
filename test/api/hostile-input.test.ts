import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { createAccount, createSystem, testApp, type Account, type ErrorBody } from "./support/app";

// Raw JSON text, so that values JSON.stringify cannot produce (lone surrogates written as
// escapes, numbers beyond double range) reach the API exactly as a hostile client sends them.
const SYSTEM_BODIES: [string, string][] = [
  ["an array instead of an object", "[1,2,3]"],
  ["a bare string", '"name"'],
  ["null", "null"],
  ["nested objects where text belongs", '{"name":{"$gt":""},"purpose":{"a":{"b":1}}}'],
  ["a NUL character", '{"name":"a\\u0000b","purpose":"p"}'],
  ["a lone surrogate", '{"name":"\\ud800","purpose":"p"}'],
  ["a number as name", '{"name":1e400,"purpose":"p"}'],
  ["a prototype key", '{"__proto__":{"admin":true},"name":"x","purpose":"p"}'],
  ["an enormous string", JSON.stringify({ name: "n".repeat(300), purpose: "p" })],
  ["deep nesting", `{"name":"x","purpose":"p","extra":${"[".repeat(5000)}${"]".repeat(5000)}}`],
];

const EVENT_BODIES: [string, string][] = [
  ["a value beyond double range", '[{"type":"x","value":1e400}]'],
  ["a non-numeric value", '[{"type":"x","value":"NaN"}]'],
  ["a year-zero timestamp", '[{"type":"x","ts":"0000-01-01T00:00:00Z"}]'],
  ["a timestamp without zone", '[{"type":"x","ts":"2030-01-01T00:00:00"}]'],
  ["a type with SQL", `[{"type":"x'; DROP TABLE events; --"}]`],
  [
    "deeply nested attributes",
    `[{"type":"x","attributes":{"a":${"[".repeat(40)}${"]".repeat(40)}}}]`,
  ],
  ["huge attributes", JSON.stringify([{ type: "x", attributes: { blob: "b".repeat(9000) } }])],
  ["a NUL in attributes", '[{"type":"x","attributes":{"k":"\\u0000"}}]'],
  ["an object instead of a batch", '{"type":"x"}'],
];

describe("hostile input", () => {
  let app: Express;
  let account: Account;
  let systemId: string;
  before(async () => {
    app = testApp();
    account = await createAccount(app);
    systemId = await createSystem(app, account.apiKey, { name: "target", purpose: "p" });
  });

  const postRaw = (path: string, body: string) =>
    request(app)
      .post(path)
      .set("X-API-Key", account.apiKey)
      .set("Content-Type", "application/json")
      .send(body);

  for (const [what, body] of SYSTEM_BODIES) {
    it(`when a system body holds ${what}, then 400 in the error shape`, async () => {
      const response = await postRaw("/v1/systems", body);
      expect(response.status).to.equal(400);
      expect((response.body as ErrorBody).error.requestId).to.equal(response.get("X-Request-ID"));
    });
  }

  for (const [what, body] of EVENT_BODIES) {
    it(`when an event batch holds ${what}, then 400`, async () => {
      const response = await postRaw("/v1/events", body);
      expect(response.status).to.equal(400);
    });
  }

  it("when text holds SQL meta-characters, quotes and unicode, then it is stored and returned verbatim", async () => {
    const name = `Robert'); DROP TABLE systems;-- "quoted" \\ 🚀 ﷽ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ‮RTL`;
    const created = await request(app)
      .post("/v1/systems")
      .set("X-API-Key", account.apiKey)
      .send({ name, purpose: "%_ LIKE wildcards $1 ?" })
      .expect(201);
    const fetched = await request(app)
      .get(`/v1/systems/${(created.body as { id: string }).id}`)
      .set("X-API-Key", account.apiKey)
      .expect(200);
    expect(fetched.body).to.include({ name, purpose: "%_ LIKE wildcards $1 ?" });
  });

  it("when numbers are huge, negative or fractional where sizes belong, then 400", async () => {
    for (const size of ["1e400", "-1", "1.5", "18446744073709551616", '"12"']) {
      const response = await postRaw(
        `/v1/systems/${systemId}/evidence`,
        `{"filename":"f","sha256":"${"a".repeat(64)}","size":${size},"contentType":"text/plain"}`,
      );
      expect(response.status, size).to.equal(400);
    }
  });

  it("when query strings are repeated, garbled or injected, then 400/404 or a plain answer, never 5xx", async () => {
    const cases: [string, number][] = [
      ["/v1/systems?limit=1&limit=2", 400],
      ["/v1/systems?limit=-5", 400],
      ["/v1/systems?limit=1e9", 400],
      ["/v1/systems?cursor=%27%20OR%201%3D1--", 400],
      [
        "/v1/systems?cursor=" +
          Buffer.from("2020-01-01T00:00:00.000000Z|not-a-uuid").toString("base64url"),
        400,
      ],
      // The simple query parser builds no objects: "from[$gt]" is just an unknown parameter.
      ["/v1/events/stats?from[$gt]=1", 200],
      ["/v1/events/stats?type=%00", 400],
      ["/v1/events/stats?bucket=1h%3B%20DROP", 400],
      ["/v1/systems/%E0%A4%A", 400],
      ["/v1/systems/" + "9".repeat(5000), 404],
    ];
    for (const [path, status] of cases) {
      const response = await request(app).get(path).set("X-API-Key", account.apiKey);
      expect(response.status, path).to.equal(status);
    }
  });
});
