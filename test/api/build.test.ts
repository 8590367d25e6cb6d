import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { expect } from "chai";
import { buildApi } from "../../api/build";
import { testEnv } from "./support/environment";
import { runMigrate } from "./support/server";

function files(root: string, dir = root): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? files(root, path) : [relative(root, path)];
    });
}

function digest(root: string): Record<string, string> {
  return Object.fromEntries(
    files(root).map((file) => [
      file,
      createHash("sha256")
        .update(readFileSync(join(root, file)))
        .digest("hex"),
    ]),
  );
}

describe("the release build (dist/api)", () => {
  it("when built, then it holds the two bundles and only the native addon's runtime packages", () => {
    const dist = testEnv().distDir;
    expect(readdirSync(dist).sort()).to.deep.equal([
      "migrate.js",
      "node_modules",
      "package.json",
      "server.js",
    ]);
    const packages = readdirSync(join(dist, "node_modules")).flatMap((name) =>
      name.startsWith("@")
        ? readdirSync(join(dist, "node_modules", name)).map((sub) => `${name}/${sub}`)
        : [name],
    );
    expect(packages.sort()).to.deep.equal(["@phc/format", "argon2", "node-gyp-build"]);
    expect(JSON.parse(readFileSync(join(dist, "package.json"), "utf8"))).to.include({
      type: "commonjs",
    });
    expect(files(dist).some((file) => file.startsWith("node_modules/argon2/build/"))).to.equal(
      false,
    );
  });

  it("when built twice, then every file is byte-identical and no build-machine path is inside", async () => {
    const again = join(testEnv().tmp, "rebuild", "api");
    await buildApi(again);
    expect(digest(again)).to.deep.equal(digest(testEnv().distDir));
    const repoRoot = resolve(__dirname, "..", "..");
    for (const file of ["server.js", "migrate.js", "package.json"]) {
      const text = readFileSync(join(again, file), "utf8");
      expect(text, file).not.to.contain(repoRoot);
      expect(text, file).not.to.contain(testEnv().tmp);
    }
  });

  it("when built, then the bundles are ASCII, so V8 keeps their source at one byte a character", () => {
    for (const bundle of ["server.js", "migrate.js"]) {
      const text = readFileSync(join(testEnv().distDir, bundle));
      expect(
        text.findIndex((byte) => byte > 0x7f),
        bundle,
      ).to.equal(-1);
    }
  });

  it("when the target directory is not an earlier build, then the build refuses to replace it", async () => {
    const precious = join(testEnv().tmp, "precious");
    mkdirSync(precious, { recursive: true });
    writeFileSync(join(precious, "notes.txt"), "keep me");
    let failure: unknown;
    await buildApi(precious).catch((error: unknown) => (failure = error));
    expect(String(failure)).to.contain("refusing to replace");
    expect(readFileSync(join(precious, "notes.txt"), "utf8")).to.equal("keep me");
  });

  it("when migrate.js runs from the release directory alone, then it loads and checks its config", async () => {
    const result = await runMigrate({});
    expect(result.code).to.equal(78);
    expect(result.stderr).to.contain("DATABASE_URL: is required");
  });
});
