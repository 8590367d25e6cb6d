import { expect } from "chai";
import { toApiError } from "../../api/src/middleware/errors";
import { testEnv } from "./support/environment";

/** The error PostgreSQL raises for `sql`. */
async function databaseError(sql: string): Promise<unknown> {
  try {
    await testEnv().db.raw(sql);
  } catch (error) {
    return error;
  }
  throw new Error(`${sql} did not fail`);
}

describe("how errors are answered", () => {
  it("when PostgreSQL raises a data exception (class 22) over stored values, then it is a 500 to fix, never a 400 blaming the caller", async () => {
    const overflow = await databaseError(
      "SELECT avg(v) FROM (VALUES (1e308::float8), (1e308::float8)) AS t(v)",
    );
    expect((overflow as { code: string }).code).to.match(/^22/);
    const answer = toApiError(overflow);
    expect(answer.status).to.equal(500);
    expect(answer.code).to.equal("internal_error");
    expect(answer.message).to.equal("Internal server error.");
  });

  it("when PostgreSQL refuses an impossible date, then it is a 500 as well", async () => {
    const impossible = await databaseError("SELECT '2024-02-30T00:00:00Z'::timestamptz");
    expect((impossible as { code: string }).code).to.match(/^22/);
    expect(toApiError(impossible).status).to.equal(500);
  });
});
