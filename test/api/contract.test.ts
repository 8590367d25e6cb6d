// The contract check itself (support/contract.ts), which every other test of the tier relies on:
// it must refuse what the document does not allow.
import { randomUUID } from "node:crypto";
import { expect } from "chai";
import { Contract, type ObservedResponse } from "./support/contract";

const system = {
  id: randomUUID(),
  name: "n",
  purpose: "p",
  createdAt: "2030-01-01T00:00:00.000Z",
};

const json = (method: string, path: string, status: number, body: unknown): ObservedResponse => ({
  method,
  path,
  status,
  contentType: "application/json; charset=utf-8",
  body: JSON.stringify(body),
});

describe("the contract check", () => {
  const contract = new Contract();

  it("when a response matches its documented status and schema, then it has no problem", () => {
    expect(contract.problems(json("GET", `/v1/systems/${system.id}`, 200, system))).to.deep.equal(
      [],
    );
  });

  it("when a status is not documented for the operation, then it is named", () => {
    expect(contract.problems(json("GET", "/health", 503, { status: "ok" }))).to.deep.equal([
      "GET /health → 503: status not documented for GET /health",
    ]);
  });

  it("when a body drifts from its schema, then each difference is named", () => {
    const problems = contract.problems(
      json("GET", `/v1/systems/${system.id}`, 200, { ...system, createdAt: "yesterday", name: 1 }),
    );
    expect(problems.join("\n")).to.contain("body/createdAt").and.to.contain("body/name");
  });

  it("when an error body lacks its request id, then it is refused", () => {
    const problems = contract.problems(
      json("POST", "/v1/systems", 400, { error: { code: "x", message: "y" } }),
    );
    expect(problems.join("\n")).to.contain("requestId");
  });

  it("when a route the document lacks answers, then only a 404 with the Error body passes", () => {
    const error = { error: { code: "not_found", message: "m", requestId: "r" } };
    expect(contract.problems(json("GET", "/nowhere", 404, error))).to.deep.equal([]);
    expect(contract.problems(json("GET", "/nowhere", 200, {}))).to.have.length(1);
  });

  it("when the media type is not the documented one, then it is named", () => {
    const problems = contract.problems({
      method: "GET",
      path: "/metrics",
      status: 200,
      contentType: "application/json",
      body: "{}",
    });
    expect(problems).to.deep.equal([
      'GET /metrics → 200: media type "application/json" is not one of text/plain',
    ]);
  });
});
