"use strict";
// Mocha reporter: the spec reporter's output, plus the run's counts written as JSON to the file
// named by KEEL_TEST_COUNTS, so test/run-tiers.ts can add the tiers up. A pending (skipped) test
// is counted as failed: a skip must never pass for a pass.
const fs = require("node:fs");
const Mocha = require("mocha");

const { EVENT_RUN_END, EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_TEST_PENDING } =
  Mocha.Runner.constants;

class CountReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const counts = { passed: 0, failed: 0, pending: 0 };
    runner.on(EVENT_TEST_PASS, () => counts.passed++);
    runner.on(EVENT_TEST_FAIL, () => counts.failed++);
    runner.on(EVENT_TEST_PENDING, () => counts.pending++);
    runner.once(EVENT_RUN_END, () => {
      const file = process.env.KEEL_TEST_COUNTS;
      if (file) fs.writeFileSync(file, JSON.stringify(counts));
    });
  }
}

module.exports = CountReporter;
