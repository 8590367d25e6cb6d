// Builds the API release directory (dist/api by default): server.js and migrate.js bundled by
// esbuild, plus node_modules/ holding only what cannot be bundled, i.e. native addons (argon2)
// and the packages they load at run time. The directory runs with a plain `node` and nothing
// else, and the same sources always give byte-identical files (no timestamps, no absolute
// paths), because provisioning names releases by a hash of its content.
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { spawnSync } from "node:child_process";
import { builtinModules, createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import * as esbuild from "esbuild";

const API_DIR = __dirname;
const REPO_ROOT = resolve(API_DIR, "..");

/** What the server runs: Debian's nodejs (20.19 on trixie). */
const NODE_TARGET = "node20.19";

// Drivers of knex dialects other than PostgreSQL. knex requires them only when such a client is
// configured, which the API never does; they stay unresolved require() calls in the bundle.
const UNUSED_OPTIONAL_DRIVERS = [
  "better-sqlite3",
  "mariadb",
  "mariadb/callback",
  "mysql",
  "mysql2",
  "oracledb",
  "pg-native",
  "pg-query-stream",
  "sqlite3",
  "tedious",
];

const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/** "@scope/name/sub/path" -> "@scope/name"; "name/sub" -> "name". */
function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return (specifier.startsWith("@") ? parts.slice(0, 2) : parts.slice(0, 1)).join("/");
}

/** The installed directory of package `name` as Node would find it from `fromDir`. */
function packageDir(name: string, fromDir: string): string {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dirname(dir) === dir) throw new Error(`cannot find package ${name} from ${fromDir}`);
  }
}

// A native addon carries a build recipe or prebuilt binaries; esbuild cannot bundle those.
function isNativePackage(dir: string): boolean {
  return existsSync(join(dir, "binding.gyp")) || existsSync(join(dir, "prebuilds"));
}

/** Bare imports of package `dir`'s entry file and everything it requires inside the package. */
async function packageImports(dir: string): Promise<string[]> {
  const entry = createRequire(join(dir, "package.json")).resolve(dir);
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    metafile: true,
    platform: "node",
    packages: "external",
    logLevel: "silent",
  });
  const imports = Object.values(result.metafile.outputs).flatMap((output) => output.imports);
  return [
    ...new Set(
      imports
        .filter((item) => item.external && !BUILTINS.has(item.path))
        .map((item) => packageName(item.path)),
    ),
  ];
}

/** The packages to ship: each native addon and, recursively, what it loads at run time. */
async function runtimeClosure(natives: ReadonlyMap<string, string>): Promise<Map<string, string>> {
  const closure = new Map<string, string>();
  const queue = [...natives];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    const [name, dir] = next;
    const known = closure.get(name);
    if (known !== undefined) {
      if (known !== dir) throw new Error(`two versions of ${name} are needed: ${known}, ${dir}`);
      continue;
    }
    closure.set(name, dir);
    for (const dependency of await packageImports(dir)) {
      queue.push([dependency, packageDir(dependency, dir)]);
    }
  }
  return closure;
}

// Copies an installed package without its nested node_modules. A native addon's build/ holds
// compiler output of this machine (object files, Makefiles with absolute paths); it is left out
// when the package ships prebuilt binaries (prebuilds/), which are what the server loads, and
// otherwise reduced to the compiled build/Release/*.node.
function copyPackage(from: string, to: string): void {
  const release = join(from, "build", "Release");
  const compiled =
    existsSync(join(from, "prebuilds")) || !existsSync(release)
      ? []
      : readdirSync(release).filter((name) => name.endsWith(".node"));
  const keep = (path: string): boolean => {
    if (path === "node_modules" || path.startsWith("node_modules/")) return false;
    if (path !== "build" && !path.startsWith("build/")) return true;
    if (compiled.length === 0) return false;
    return (
      path === "build" ||
      path === "build/Release" ||
      compiled.some((name) => path === `build/Release/${name}`)
    );
  };
  cpSync(from, to, { recursive: true, filter: (source) => keep(relative(from, source)) });
}

// A prebuilt addon can need a newer Node-API than this Node offers (argon2 0.45's prebuilds need
// Node-API 10 and crash Node 20): load each shipped addon once, in a child process.
function assertLoadable(dir: string, packages: readonly string[]): void {
  for (const name of packages) {
    const child = spawnSync(process.execPath, ["-e", `require(${JSON.stringify(name)})`], {
      cwd: dir,
      encoding: "utf8",
    });
    if (child.status !== 0) {
      throw new Error(
        `the shipped native addon ${name} does not load with Node ${process.version} ` +
          `(${child.signal ?? `exit ${child.status}`}): ${child.stderr.trim()}`,
      );
    }
  }
}

// Replacing a directory is only safe when it is a previous build (or nothing at all).
function assertReplaceable(outDir: string): void {
  if (!existsSync(outDir)) return;
  const entries = readdirSync(outDir);
  if (entries.length > 0 && !entries.includes("server.js")) {
    throw new Error(`refusing to replace ${outDir}: it is not an API build`);
  }
}

/** Builds the API into `outDir` (replaced as a whole); returns the native packages shipped. */
export async function buildApi(outDir = join(REPO_ROOT, "dist", "api")): Promise<string[]> {
  const target = resolve(outDir);
  assertReplaceable(target);
  const staging = `${target}.staging-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    const natives = new Map<string, string>();
    await esbuild.build({
      absWorkingDir: REPO_ROOT,
      entryPoints: {
        server: join(API_DIR, "src/server.ts"),
        migrate: join(API_DIR, "src/migrate.ts"),
      },
      outdir: staging,
      bundle: true,
      platform: "node",
      target: NODE_TARGET,
      format: "cjs",
      keepNames: true,
      // No comments: some hold characters beyond Latin-1, which make V8 keep the whole bundle's
      // source two bytes a character (about 6 MB more per instance). Stack traces keep their
      // function names (keepNames); their columns point into long lines.
      minifyWhitespace: true,
      logLevel: "warning",
      external: UNUSED_OPTIONAL_DRIVERS,
      plugins: [
        {
          name: "native-addons",
          setup(build) {
            build.onResolve({ filter: /^[^./]/ }, (args) => {
              if (BUILTINS.has(args.path) || UNUSED_OPTIONAL_DRIVERS.includes(args.path)) {
                return undefined;
              }
              const name = packageName(args.path);
              const dir = packageDir(name, args.resolveDir);
              if (!isNativePackage(dir)) return undefined;
              natives.set(name, dir);
              return { path: args.path, external: true };
            });
          },
        },
      ],
    });
    writeFileSync(
      join(staging, "package.json"),
      `${JSON.stringify({ name: "keel-api-release", private: true, type: "commonjs" }, null, 2)}\n`,
    );
    const closure = await runtimeClosure(natives);
    for (const name of [...closure.keys()].sort()) {
      copyPackage(closure.get(name) as string, join(staging, "node_modules", name));
    }
    assertLoadable(staging, [...natives.keys()]);
    rmSync(target, { recursive: true, force: true });
    mkdirSync(dirname(target), { recursive: true });
    renameSync(staging, target);
    return [...closure.keys()].sort();
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function main(): void {
  const outDir = process.argv[2] ?? join(REPO_ROOT, "dist", "api");
  buildApi(outDir).then(
    (shipped) => {
      const version = (
        JSON.parse(readFileSync(join(API_DIR, "package.json"), "utf8")) as {
          version: string;
        }
      ).version;
      console.log(
        `built @keel/api ${version} into ${relative(process.cwd(), resolve(outDir)) || "."} ` +
          `(node_modules: ${shipped.join(", ") || "none"})`,
      );
    },
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exitCode = 1;
    },
  );
}

if (require.main === module) main();
