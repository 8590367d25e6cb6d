import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import { CLIENT_TYPES_FILE, clientTypes } from "../../api/openapi/client-types";

describe("the generated client's types (tools/verify/api.d.ts)", () => {
  it("when regenerated from the served document, then they equal the committed file (else run npm run generate:client)", async () => {
    const committed = readFileSync(join(__dirname, "..", "..", CLIENT_TYPES_FILE), "utf8");
    expect(await clientTypes()).to.equal(committed);
  });
});
