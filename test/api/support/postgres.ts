// A throwaway PostgreSQL cluster: initdb into a temporary directory, fsync off, a random port,
// its unix socket in that directory. initdb refuses to run as root, so as root the cluster runs
// as the `postgres` OS user (created by Debian's postgresql package).
import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./ports";

function binDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0] === undefined) throw new Error("PostgreSQL not found under /usr/lib/postgresql");
  return join(root, versions[0], "bin");
}

const asRoot = process.getuid?.() === 0;

export class TestPostgres {
  readonly bin = binDir();
  readonly dir = mkdtempSync(join(tmpdir(), "keel-pg-"));
  readonly data = join(this.dir, "data");
  port = 0;
  /** Whether the timescaledb extension is installed on this machine. */
  readonly timescale: boolean;

  constructor() {
    const sharedir = execFileSync(join(this.bin, "pg_config"), ["--sharedir"], {
      encoding: "utf8",
    }).trim();
    this.timescale = existsSync(join(sharedir, "extension", "timescaledb.control"));
  }

  private run(tool: string, args: string[]): void {
    const command = join(this.bin, tool);
    const [file, argv] = asRoot
      ? ["runuser", ["-u", "postgres", "--", command, ...args]]
      : [command, args];
    execFileSync(file, argv, { stdio: ["ignore", "ignore", "pipe"], cwd: this.dir });
  }

  async init(): Promise<void> {
    if (asRoot) {
      const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }));
      const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }));
      chownSync(this.dir, uid, gid);
    }
    this.run("initdb", [
      "-D",
      this.data,
      "-U",
      "postgres",
      "--auth=trust",
      "--no-sync",
      "-E",
      "UTF8",
      "--locale=C",
    ]);
    this.port = await freePort();
    this.start();
    await this.admin("postgres", async (client) => {
      await client.query("CREATE ROLE keel LOGIN PASSWORD 'keel' NOSUPERUSER NOCREATEDB");
      await client.query("CREATE ROLE keel_other LOGIN PASSWORD 'keel' NOSUPERUSER");
    });
  }

  start(): void {
    const options = [
      `-p ${this.port}`,
      `-k ${this.dir}`,
      "-c listen_addresses=127.0.0.1",
      "-c fsync=off",
      "-c synchronous_commit=off",
      "-c full_page_writes=off",
      ...(this.timescale ? ["-c shared_preload_libraries=timescaledb"] : []),
    ].join(" ");
    this.run("pg_ctl", [
      "-D",
      this.data,
      "-l",
      join(this.dir, "log"),
      "-w",
      "-t",
      "60",
      "-o",
      options,
      "start",
    ]);
  }

  stop(): void {
    this.run("pg_ctl", ["-D", this.data, "-m", "fast", "-w", "-t", "60", "stop"]);
  }

  /** Creates a database owned by the API's role, with timescaledb when installed. */
  async createDatabase(name: string): Promise<string> {
    await this.admin("postgres", (client) => client.query(`CREATE DATABASE ${name} OWNER keel`));
    if (this.timescale) {
      await this.admin(name, (client) => client.query("CREATE EXTENSION timescaledb"));
    }
    return this.url(name);
  }

  /** URL for the API's (non-superuser) role. */
  url(database: string, role = "keel"): string {
    return `postgres://${role}:keel@127.0.0.1:${this.port}/${database}`;
  }

  async admin<T>(database: string, action: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({
      host: "127.0.0.1",
      port: this.port,
      user: "postgres",
      database,
    });
    await client.connect();
    try {
      return await action(client);
    } finally {
      await client.end();
    }
  }

  destroy(): void {
    if (!existsSync(this.dir)) return;
    try {
      this.stop();
    } catch {
      // Already stopped.
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
