// The verification suite (tools/verify) calls the API through the client generated from the
// OpenAPI document. Its API checks run here against an app on a plain-HTTP port; the platform's
// checks (TLS, port 80, nginx) run in the e2e tier.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { CHECKS, VerifyContext } from "../../tools/verify/checks";
import { createAccount, testApp } from "./support/app";

/** The checks of the API itself, in the suite's order; they share what earlier ones create. */
const API_CHECKS = [
  "/health answers 200",
  "/ready answers 200 with every check true",
  "/docs serves the OpenAPI document",
  "without credentials the API answers 401 with WWW-Authenticate",
  "a wrong API key is refused with 403",
  "the admin API key works",
  "a new user registers and logs in",
  "an API key is created, shown once, listed and accepted",
  "a system is created and read back",
  "evidence bytes go up through the presigned URL and come back the same",
  "events are accepted and counted in stats",
  "a revoked API key stops working at once",
  "a 2 MB body is refused with 413",
];

describe("the verification suite's API checks, through the generated client", () => {
  let server: Server;
  let url: string;
  let apiKey: string;
  before(async () => {
    const app = testApp();
    apiKey = (await createAccount(app)).apiKey;
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it("when the API checks run against the app, then every one passes", async () => {
    const checks = API_CHECKS.map((name) => CHECKS.find((check) => check.name === name));
    expect(
      checks.every((check) => check !== undefined),
      "a check was renamed",
    ).to.equal(true);
    const ctx = new VerifyContext({ url, apiKey });
    const failures: string[] = [];
    for (const check of checks) {
      await check
        ?.run(ctx)
        .catch((error: Error) => failures.push(`${check.name}: ${error.message}`));
    }
    expect(failures).to.deep.equal([]);
  });
});
