// Per-minute and per-hour totals of events (count, count of values, exact sum of values) for each
// org and type, so that statistics over days read minutes and hours instead of every event.
// Debian's TimescaleDB is the Apache-licensed edition, without continuous aggregates, so Keel
// keeps the totals itself:
// - the API's ingest adds a batch's totals in its own transaction (event-totals.ts), after
//   setting keel.event_totals to 'api' for that transaction;
// - every other insert into events (an older release still serving during a roll-out, an
//   operator's psql) is added row by row by a trigger that the setting turns off.
// Events are append-only; deleting an org removes its totals with its events.
import type { Knex } from "knex";

const EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'";
const LEVELS = [
  { table: "event_minutes", width: "1 minute" },
  { table: "event_hours", width: "1 hour" },
] as const;

export async function up(knex: Knex): Promise<void> {
  // No insert may slip between the totals of what is there and the trigger taking over.
  await knex.raw("LOCK TABLE events IN SHARE MODE");
  for (const { table, width } of LEVELS) {
    await knex.schema.createTable(table, (t) => {
      t.uuid("org_id").notNullable().references("id").inTable("orgs").onDelete("CASCADE");
      t.text("type").notNullable();
      t.timestamp("start", { useTz: true }).notNullable();
      t.bigInteger("events").notNullable();
      t.bigInteger("valued").notNullable();
      t.specificType("value_sum", "numeric").notNullable();
      t.primary(["org_id", "type", "start"]);
      // Statistics over every type read a range of starts.
      t.index(["org_id", "start"]);
    });
    await knex.raw(`
      INSERT INTO ${table} (org_id, type, start, events, valued, value_sum)
      SELECT org_id, type, date_bin('${width}', ts, ${EPOCH}),
             count(*), count(value), coalesce(sum(value::numeric), 0)
        FROM events
       GROUP BY 1, 2, 3`);
  }
  const upsert = ({ table, width }: (typeof LEVELS)[number]) => `
      INSERT INTO ${table} AS t (org_id, type, start, events, valued, value_sum)
      VALUES (NEW.org_id, NEW.type, date_bin('${width}', NEW.ts, ${EPOCH}),
              1, (NEW.value IS NOT NULL)::int, coalesce(NEW.value::numeric, 0))
      ON CONFLICT (org_id, type, start) DO UPDATE
         SET events = t.events + 1,
             valued = t.valued + excluded.valued,
             value_sum = t.value_sum + excluded.value_sum;`;
  await knex.raw(`
    CREATE FUNCTION event_totals_add_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      ${LEVELS.map(upsert).join("\n")}
      RETURN NULL;
    END $$`);
  await knex.raw(`
    CREATE TRIGGER event_totals_add_row AFTER INSERT ON events FOR EACH ROW
      WHEN (current_setting('keel.event_totals', true) IS DISTINCT FROM 'api')
      EXECUTE FUNCTION event_totals_add_row()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("DROP TRIGGER event_totals_add_row ON events");
  await knex.raw("DROP FUNCTION event_totals_add_row()");
  for (const { table } of LEVELS) await knex.schema.dropTable(table);
}
