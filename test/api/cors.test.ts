// An API without a browser front end: with FRONTEND_ORIGINS unset, or empty as Keel renders it
// when keel:frontendOrigins is left out, no response carries a CORS header, so no page on any
// origin may read the API's answers.
import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { testApp } from "./support/app";

const PAGE = "https://app.example.test";

/** The Access-Control-* headers of a simple cross-origin GET and of a preflight. */
async function corsHeadersOf(app: Express): Promise<string[]> {
  const simple = await request(app).get("/health").set("Origin", PAGE).expect(200);
  const preflight = await request(app)
    .options("/v1/systems")
    .set("Origin", PAGE)
    .set("Access-Control-Request-Method", "POST")
    .set("Access-Control-Request-Headers", "x-api-key, content-type");
  return [simple, preflight].flatMap((response) =>
    Object.keys(response.headers).filter((name) => name.startsWith("access-control-")),
  );
}

describe("CORS without browser origins", () => {
  for (const [what, value] of [
    ["unset", undefined],
    ["empty", ""],
  ] as const) {
    it(`when FRONTEND_ORIGINS is ${what} and a page on another origin calls the API, then no Access-Control-* header is sent`, async () => {
      const headers = await corsHeadersOf(testApp({ env: { FRONTEND_ORIGINS: value } }));
      expect(headers).to.deep.equal([]);
    });
  }

  it("when FRONTEND_ORIGINS names the page's origin, then the same requests get CORS headers (the check can fail)", async () => {
    const headers = await corsHeadersOf(testApp({ env: { FRONTEND_ORIGINS: PAGE } }));
    expect(headers).to.include.members([
      "access-control-allow-origin",
      "access-control-allow-methods",
    ]);
  });
});
