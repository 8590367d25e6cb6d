// fast-check arbitraries read from the OpenAPI document: valid values for a schema (the subset
// of OpenAPI 3.0 the document uses), and requests for an operation, valid or deliberately not.
import fc from "fast-check";

export type Schema = Readonly<Record<string, unknown>>;

/** Long strings and arrays add nothing but time: generated sizes stay near their minimum. */
const EXTRA_LENGTH = 24;
const EXTRA_ITEMS = 4;

export class SchemaArbitraries {
  constructor(private readonly components: Readonly<Record<string, Schema>>) {}

  resolve(schema: Schema): Schema {
    const ref = schema.$ref;
    if (typeof ref !== "string") return schema;
    const target = this.components[ref.replace("#/components/schemas/", "")];
    if (target === undefined) throw new Error(`unresolved ${ref}`);
    return target;
  }

  /** Values `schema` accepts. */
  valid(schema: Schema): fc.Arbitrary<unknown> {
    const resolved = this.resolve(schema);
    const inner = this.validNonNull(resolved);
    return resolved.nullable === true ? fc.option(inner, { nil: null }) : inner;
  }

  private validNonNull(schema: Schema): fc.Arbitrary<unknown> {
    if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
    switch (schema.type) {
      case "string":
        return this.string(schema);
      case "integer":
        return fc.integer({
          min: (schema.minimum as number | undefined) ?? -1e9,
          max: (schema.maximum as number | undefined) ?? 1e9,
        });
      case "number":
        return fc.double({
          min: schema.minimum as number | undefined,
          max: schema.maximum as number | undefined,
          noNaN: true,
          noDefaultInfinity: true,
        });
      case "boolean":
        return fc.boolean();
      case "array":
        return fc.array(this.valid(schema.items as Schema), {
          minLength: (schema.minItems as number | undefined) ?? 0,
          maxLength: Math.min(
            (schema.maxItems as number | undefined) ?? Infinity,
            ((schema.minItems as number | undefined) ?? 0) + EXTRA_ITEMS,
          ),
        });
      case "object":
        return this.object(schema);
      default:
        return fc.jsonValue({ maxDepth: 2 });
    }
  }

  private string(schema: Schema): fc.Arbitrary<string> {
    const minLength = (schema.minLength as number | undefined) ?? 0;
    const maxLength = (schema.maxLength as number | undefined) ?? Infinity;
    const fits = (value: string) => value.length >= minLength && value.length <= maxLength;
    switch (schema.format) {
      case "uuid":
        return fc.uuid();
      case "date-time":
        return fc
          .date({
            min: new Date("1900-01-01T00:00:00Z"),
            max: new Date("2100-01-01T00:00:00Z"),
            noInvalidDate: true,
          })
          .map((date) => date.toISOString());
      case "email":
        return fc.emailAddress().filter(fits);
    }
    const sized = { minLength, maxLength: Math.min(maxLength, minLength + EXTRA_LENGTH) };
    if (typeof schema.pattern !== "string") return fc.string({ ...sized, unit: "grapheme" });
    const pattern = new RegExp(schema.pattern);
    try {
      return fc.stringMatching(pattern).filter(fits);
    } catch {
      // Features stringMatching does not read (lookaheads): generate and keep the matches.
      return fc.string({ ...sized, unit: "grapheme" }).filter((value) => pattern.test(value));
    }
  }

  private object(schema: Schema): fc.Arbitrary<Record<string, unknown>> {
    const properties = (schema.properties as Record<string, Schema> | undefined) ?? {};
    const required = (schema.required as string[] | undefined) ?? [];
    const known = fc.record(
      Object.fromEntries(
        Object.entries(properties).map(([key, value]) => [key, this.valid(value)]),
      ),
      { requiredKeys: required },
    );
    const extra = schema.additionalProperties;
    if (typeof extra !== "object" || extra === null) return known;
    return fc
      .tuple(
        known,
        fc.dictionary(fc.string({ maxLength: 20 }), this.valid(extra as Schema), { maxKeys: 3 }),
      )
      .map(([fields, more]) => ({ ...more, ...fields }));
  }
}
