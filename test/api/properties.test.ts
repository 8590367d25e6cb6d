// Property-based tests generated from the OpenAPI document: for every operation, requests built
// from its schemas (valid ones, and ones broken on purpose) never get a 5xx, and always get a
// documented status with a body matching its schema. Seeded and bounded here; bench/api-properties.ts
// runs the same with many more requests.
import { randomUUID } from "node:crypto";
import { expect } from "chai";
import type { Express } from "express";
import fc from "fast-check";
import request from "supertest";
import { servedDocument } from "../../api/openapi/document";
import { createAccount, createSystem, testApp, type Account } from "./support/app";
import { Contract } from "./support/contract";
import { SchemaArbitraries, type Schema } from "./support/generate";

/** Requests per operation and kind (valid, invalid); bench/api-properties.ts raises it. */
const RUNS = Number(process.env.KEEL_PROPERTY_RUNS ?? "25");
const SEED = Number(process.env.KEEL_PROPERTY_SEED ?? "13");

interface Parameter {
  readonly name: string;
  readonly in: "path" | "query";
  readonly required?: boolean;
  readonly schema: Schema;
}

interface OperationDoc {
  readonly operationId: string;
  readonly parameters?: Parameter[];
  readonly requestBody?: { content: Record<string, { schema: Schema }> };
  readonly security?: Record<string, string[]>[];
}

interface Operation extends OperationDoc {
  readonly method: string;
  readonly template: string;
}

interface GeneratedRequest {
  readonly path: Record<string, string>;
  readonly query: Record<string, string | undefined>;
  /** A JSON value, or raw text sent as JSON (broken on purpose). */
  readonly body?: { readonly json: unknown } | { readonly raw: string };
  readonly anonymous: boolean;
}

const document = servedDocument();
const schemas = new SchemaArbitraries(
  (document.components?.schemas ?? {}) as Record<string, Schema>,
);
const contract = new Contract(document);

const operations: Operation[] = Object.entries(document.paths ?? {}).flatMap(
  ([template, methods]) =>
    Object.entries(methods as Record<string, OperationDoc>).map(([method, operation]) => ({
      ...operation,
      method,
      template,
    })),
);

function parametersOf(operation: Operation, where: "path" | "query"): Parameter[] {
  return (operation.parameters ?? []).filter((parameter) => parameter.in === where);
}

const asText = (value: unknown): string =>
  typeof value === "string" ? value : JSON.stringify(value);

function validRequest(
  operation: Operation,
  ids: readonly string[],
): fc.Arbitrary<GeneratedRequest> {
  const path = fc.record(
    Object.fromEntries(
      parametersOf(operation, "path").map((parameter) => [
        parameter.name,
        fc.oneof(fc.constantFrom(...ids), schemas.valid(parameter.schema).map(asText)),
      ]),
    ),
  );
  const query = fc.record(
    Object.fromEntries(
      parametersOf(operation, "query").map((parameter) => {
        const value = schemas.valid(parameter.schema).map(asText);
        return [
          parameter.name,
          parameter.required === true ? value : fc.option(value, { nil: undefined }),
        ];
      }),
    ),
  );
  const bodySchema = operation.requestBody?.content["application/json"]?.schema;
  const body =
    bodySchema === undefined
      ? fc.constant(undefined)
      : schemas.valid(bodySchema).map((json) => ({ json }));
  return fc.record({ path, query, body, anonymous: fc.constant(false) });
}

/** One way or another wrong: no credentials, a body of any JSON or none at all, garbage parameters. */
function invalidRequest(
  operation: Operation,
  ids: readonly string[],
): fc.Arbitrary<GeneratedRequest> {
  const valid = validRequest(operation, ids);
  const breakers: fc.Arbitrary<GeneratedRequest>[] = [];
  if ((operation.security ?? []).length > 0)
    breakers.push(valid.map((r) => ({ ...r, anonymous: true })));
  if (operation.requestBody !== undefined) {
    breakers.push(
      fc.tuple(valid, fc.jsonValue({ maxDepth: 3 })).map(([r, json]) => ({ ...r, body: { json } })),
      fc
        .tuple(valid, fc.string({ unit: "binary", maxLength: 40 }))
        .map(([r, raw]) => ({ ...r, body: { raw } })),
      fc
        .tuple(valid, fc.string({ minLength: 1, maxLength: 20 }), fc.jsonValue({ maxDepth: 1 }))
        .map(([r, key, value]) => {
          const json = r.body !== undefined && "json" in r.body ? r.body.json : undefined;
          const broken =
            typeof json === "object" && json !== null && !Array.isArray(json)
              ? { ...json, [key]: value }
              : [json, value];
          return { ...r, body: { json: broken } };
        }),
    );
  }
  for (const where of ["path", "query"] as const) {
    const names = parametersOf(operation, where).map((parameter) => parameter.name);
    if (names.length === 0) continue;
    breakers.push(
      fc
        .tuple(
          valid,
          fc.constantFrom(...names),
          fc.string({ unit: "binary", minLength: 1, maxLength: 40 }),
        )
        .map(([r, name, garbage]) => ({ ...r, [where]: { ...r[where], [name]: garbage } })),
    );
  }
  return breakers.length === 0 ? valid : fc.oneof(...breakers);
}

function urlOf(operation: Operation, generated: GeneratedRequest): string {
  const path = operation.template.replace(/\{(\w+)\}/g, (_match, name: string) =>
    encodeURIComponent(generated.path[name] ?? ""),
  );
  const query = new URLSearchParams(
    Object.entries(generated.query).filter(
      (entry): entry is [string, string] => entry[1] !== undefined,
    ),
  ).toString();
  return query === "" ? path : `${path}?${query}`;
}

describe("properties generated from the OpenAPI document", function () {
  this.timeout(60_000);
  let app: Express;
  let account: Account;
  let ids: string[];
  const statuses = new Map<string, number>();

  before(async () => {
    app = testApp();
    account = await createAccount(app);
    const systemId = await createSystem(app, account.apiKey, { name: "properties", purpose: "p" });
    const evidence = await request(app)
      .post(`/v1/systems/${systemId}/evidence`)
      .set("X-API-Key", account.apiKey)
      .send({ filename: "f.txt", sha256: "0".repeat(64), size: 1, contentType: "text/plain" })
      .expect(201);
    const spare = await request(app)
      .post("/v1/api-keys")
      .set("Authorization", `Bearer ${account.token}`)
      .send({ name: "spare" })
      .expect(201);
    ids = [
      systemId,
      (evidence.body as { id: string }).id,
      (spare.body as { id: string }).id,
      randomUUID(),
    ];
  });

  after(() => {
    const total = [...statuses.values()].reduce((sum, count) => sum + count, 0);
    const summary = [...statuses.entries()].sort().map(([status, count]) => `${status}×${count}`);
    console.log(
      `  properties: ${total} generated requests (seed ${SEED}, ${RUNS} per operation and kind): ${summary.join(" ")}`,
    );
  });

  async function send(operation: Operation, generated: GeneratedRequest): Promise<void> {
    const url = urlOf(operation, generated);
    let pending = request(app)[operation.method as "get"](url);
    if (!generated.anonymous) {
      const userOnly = JSON.stringify(operation.security) === JSON.stringify([{ bearerAuth: [] }]);
      pending = userOnly
        ? pending.set("Authorization", `Bearer ${account.token}`)
        : pending.set("X-API-Key", account.apiKey);
    }
    if (generated.body !== undefined) {
      pending = pending
        .set("Content-Type", "application/json")
        .send("raw" in generated.body ? generated.body.raw : JSON.stringify(generated.body.json));
    }
    const response = await pending;
    statuses.set(String(response.status), (statuses.get(String(response.status)) ?? 0) + 1);
    const where = `${operation.method.toUpperCase()} ${url}`;
    expect(response.status, where).to.be.below(500);
    const problems = contract.problems({
      method: operation.method.toUpperCase(),
      path: url.split("?")[0] ?? url,
      status: response.status,
      contentType: response.get("Content-Type") ?? "",
      body: response.text ?? "",
    });
    expect(problems, where).to.deep.equal([]);
  }

  operations.forEach((operation, index) => {
    for (const [kind, arbitrary] of [
      ["valid", validRequest],
      ["invalid", invalidRequest],
    ] as const) {
      it(`when ${kind} requests for ${operation.operationId} are generated, then none gets a 5xx and each answer is documented`, async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.constant(null).chain(() => arbitrary(operation, ids)),
            (generated) => send(operation, generated),
          ),
          { seed: SEED + index, numRuns: RUNS },
        );
      });
    }
  });
});
