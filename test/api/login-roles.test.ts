// The revocation of a rotated Postgres password, run by bash against a real PostgreSQL cluster
// of its own: the api step's retire_login_roles (api.sh), and the restore step's
// carry_login_roles (restore.sh), which must not bring a retired login role back.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import pg from "pg";
import { TestPostgres } from "./support/postgres";

const scriptsDir = join(__dirname, "..", "..", "provisioning", "scripts");

/** A step script's functions only: the script without its last line, `main "$@"`. */
function functionsOf(script: string): string {
  return readFileSync(join(scriptsDir, script), "utf8")
    .trimEnd()
    .split("\n")
    .slice(0, -1)
    .join("\n");
}
const OLD_ROLE = "keel_0123456789ab";
const NEW_ROLE = "keel_ba9876543210";

describe("old Postgres login roles after a rotation (api.sh, restore.sh)", function () {
  this.timeout(60_000);
  let postgres: TestPostgres;
  let work: string;

  before(async () => {
    postgres = new TestPostgres();
    await postgres.init();
    await postgres.admin("postgres", async (client) => {
      await client.query("CREATE ROLE keel_owner NOLOGIN");
      for (const role of [OLD_ROLE, NEW_ROLE]) {
        await client.query(`CREATE ROLE ${role} LOGIN PASSWORD 'x' IN ROLE keel_owner`);
      }
    });
    work = mkdtempSync(join(tmpdir(), "keel-retire-"));
    copyFileSync(join(scriptsDir, "lib.sh"), join(work, "lib.sh"));
    // The step's functions, with psql pointed at the test cluster instead of the local one.
    writeFileSync(
      join(work, "harness.sh"),
      `${functionsOf("api.sh")}
psql_admin() { "${postgres.bin}/psql" -X -q -v ON_ERROR_STOP=1 --no-psqlrc -h 127.0.0.1 -p ${postgres.port} -U postgres -d postgres "$@"; }
shift
retire_login_roles "$@"
`,
    );
  });

  after(() => {
    postgres?.destroy();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  const retire = (login: string) =>
    spawnSync("bash", [join(work, "harness.sh"), work, login], { encoding: "utf8" });
  const connect = async (role: string): Promise<pg.Client> => {
    const client = new pg.Client({
      host: "127.0.0.1",
      port: postgres.port,
      user: role,
      password: "x",
      database: "postgres",
    });
    await client.connect();
    return client;
  };
  const loginRoles = () =>
    postgres.admin("postgres", async (client) =>
      (
        await client.query<{ rolname: string }>(
          "SELECT rolname FROM pg_roles WHERE rolname ~ '^keel_[0-9a-f]{12}$' ORDER BY 1",
        )
      ).rows.map((r) => r.rolname),
    );

  it("when every instance runs on the new password, then the old role's session is ended, the role dropped and a new login refused; a second run changes nothing", async () => {
    const oldSession = await connect(OLD_ROLE);
    const ended = new Promise<void>((resolve) => oldSession.on("error", () => resolve()));
    const newSession = await connect(NEW_ROLE);

    const run = retire(NEW_ROLE);
    expect(run.stderr).to.equal("");
    expect(run.status).to.equal(0);
    expect(run.stdout).to.include(`changed: dropped login role ${OLD_ROLE} of an earlier password`);

    expect(await loginRoles()).to.deep.equal([NEW_ROLE]);
    await ended;
    let refused: unknown;
    try {
      await (await connect(OLD_ROLE)).end();
    } catch (error) {
      refused = error;
    }
    expect(String(refused)).to.match(new RegExp(`role "${OLD_ROLE}" does not exist`));
    // The current role's sessions are untouched.
    expect((await newSession.query("SELECT 1 AS one")).rows).to.deep.equal([{ one: 1 }]);
    await newSession.end();

    const again = retire(NEW_ROLE);
    expect(again.status).to.equal(0);
    expect(again.stdout).to.equal("");
  });

  it("when the payload's login role is malformed, then nothing is dropped and the step fails", async () => {
    const run = retire("keel; DROP ROLE postgres");
    expect(run.status).to.equal(1);
    expect(run.stderr).to.include("the login role name in the payload is malformed");
    expect(await loginRoles()).to.deep.equal([NEW_ROLE]);
  });

  it("when a restored cluster holds the login role of a password retired since its backup, then the restore drops it and keeps the saved ones", async () => {
    await postgres.admin("postgres", (client) =>
      client.query(`CREATE ROLE ${OLD_ROLE} LOGIN PASSWORD 'x' IN ROLE keel_owner`),
    );
    const verifier = await postgres.admin("postgres", async (client) => {
      const rows = await client.query<{ rolpassword: string }>(
        `SELECT rolpassword FROM pg_authid WHERE rolname = '${NEW_ROLE}'`,
      );
      return rows.rows[0]?.rolpassword ?? "";
    });
    expect(verifier).to.match(/^SCRAM-SHA-256\$/);
    // The roles of the cluster in place before the restore: the current one only.
    writeFileSync(join(work, "roles"), `${NEW_ROLE} ${verifier}\n`);
    writeFileSync(
      join(work, "restore-harness.sh"),
      `${functionsOf("restore.sh")}
export PATH="${postgres.bin}:$PATH" PGHOST=127.0.0.1 PGPORT=${postgres.port} PGUSER=postgres
as_postgres() { "$@"; }
carry_login_roles "$2"
`,
    );
    const run = spawnSync("bash", [join(work, "restore-harness.sh"), work, join(work, "roles")], {
      encoding: "utf8",
    });
    expect(run.stderr).to.equal("");
    expect(run.status).to.equal(0);
    expect(run.stdout).to.include(`dropped login role ${OLD_ROLE}`);
    expect(await loginRoles()).to.deep.equal([NEW_ROLE]);
  });
});
