// The api step's revocation of a rotated Postgres password (retire_login_roles in
// provisioning/scripts/api.sh), run by bash against a real PostgreSQL cluster of its own.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import pg from "pg";
import { TestPostgres } from "./support/postgres";

const scriptsDir = join(__dirname, "..", "..", "provisioning", "scripts");
const OLD_ROLE = "keel_0123456789ab";
const NEW_ROLE = "keel_ba9876543210";

describe("the api step's retirement of old Postgres login roles (api.sh)", function () {
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
    const functions = readFileSync(join(scriptsDir, "api.sh"), "utf8")
      .trimEnd()
      .split("\n")
      .slice(0, -1)
      .join("\n");
    // The step's functions, with psql pointed at the test cluster instead of the local one.
    writeFileSync(
      join(work, "harness.sh"),
      `${functions}
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
});
