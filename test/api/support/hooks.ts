// Mocha global fixtures for the api tier: start the real parts once, stop them at the end. And
// the contract check: each test fails when a response it (or a hook before it) received does not
// match the OpenAPI document.
import type { Context, Func } from "mocha";
import { setUpEnvironment, tearDownEnvironment } from "./environment";
import { checkedCount, takeViolations } from "./observe";

export async function mochaGlobalSetup(): Promise<void> {
  // The AWS SDK warns once per process that it will need Node 22 from 2027; not news here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  await setUpEnvironment();
}

export async function mochaGlobalTeardown(): Promise<void> {
  await tearDownEnvironment();
}

function failOnViolations(): void {
  const violations = takeViolations();
  if (violations.length > 0) {
    throw new Error(`responses outside the OpenAPI document:\n  ${violations.join("\n  ")}`);
  }
}

export const mochaHooks = {
  beforeEach(this: Context): void {
    const test = this.currentTest;
    const fn = test?.fn;
    if (test === undefined || fn === undefined) return;
    // Mocha tells callback tests by their arity: the wrapper below has none.
    if (fn.length !== 0)
      throw new Error(`"${test.title}": write it as an async test, without done`);
    test.fn = async function (this: Context) {
      await (fn as () => Promise<void>).call(this);
      failOnViolations();
    } as Func;
  },
  afterAll(): void {
    failOnViolations();
    console.log(`  contract: ${checkedCount()} responses checked against the OpenAPI document`);
  },
};
