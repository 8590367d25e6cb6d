// Mocha global fixtures for the api tier: start the real parts once, stop them at the end.
import { setUpEnvironment, tearDownEnvironment } from "./environment";

export async function mochaGlobalSetup(): Promise<void> {
  // The AWS SDK warns once per process that it will need Node 22 from 2027; not news here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  await setUpEnvironment();
}

export async function mochaGlobalTeardown(): Promise<void> {
  await tearDownEnvironment();
}
