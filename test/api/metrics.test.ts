import { expect } from "chai";
import type { Express } from "express";
import request from "supertest";
import { isLoopback } from "../../api/src/routes/operations";
import { createAccount, testApp, type ErrorBody } from "./support/app";

describe("/metrics", () => {
  let app: Express;
  before(() => {
    app = testApp();
  });

  it("when asked from this machine without a proxy header, then Prometheus text with request counts, latencies and process metrics", async () => {
    const account = await createAccount(app);
    await request(app).get("/v1/systems").set("X-API-Key", account.apiKey).expect(200);
    await request(app).get("/no/such/path").expect(404);
    const response = await request(app).get("/metrics").expect(200);
    expect(response.type).to.equal("text/plain");
    const text = response.text;
    expect(text).to.match(
      /http_requests_total\{method="GET",route="\/v1\/systems",status="200"\} [1-9]/,
    );
    expect(text).to.match(
      /http_requests_total\{method="GET",route="unmatched",status="404"\} [1-9]/,
    );
    expect(text).to.contain(
      'http_request_duration_seconds_bucket{le="0.1",method="GET",route="/v1/systems",status="200"}',
    );
    expect(text).to.match(/^process_cpu_user_seconds_total /m);
    expect(text).to.match(/^nodejs_eventloop_lag_seconds /m);
    expect(text).not.to.contain("/no/such/path");
  });

  it("when the request came through the proxy, then 404 exactly like an unknown route", async () => {
    for (const header of ["X-Forwarded-For", "X-Real-IP", "Forwarded"]) {
      const response = await request(app).get("/metrics").set(header, "203.0.113.9").expect(404);
      const error = (response.body as ErrorBody).error;
      expect(error.code).to.equal("not_found");
      expect(error.message).to.equal("No route for GET /metrics.");
      expect(response.text).not.to.contain("http_requests_total");
    }
  });

  it("when the peer address is checked, then only 127.0.0.0/8 and ::1 (also IPv4-mapped) count as loopback", () => {
    for (const address of ["127.0.0.1", "127.10.0.3", "::1", "::ffff:127.0.0.1"]) {
      expect(isLoopback(address), address).to.equal(true);
    }
    for (const address of [
      "10.0.0.1",
      "192.168.1.5",
      "::ffff:10.0.0.1",
      "2001:db8::1",
      "fe80::1",
      "",
      undefined,
    ]) {
      expect(isLoopback(address), String(address)).to.equal(false);
    }
  });
});
