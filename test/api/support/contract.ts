// The contract check of the api tier: every response an API app or server gives a test is
// validated against the OpenAPI document the API serves (status, media type and body, with
// ajv). A response the document does not allow fails the test that caused it (see hooks.ts).
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { servedDocument } from "../../../api/openapi/document";
import { LOCAL_EVIDENCE_PATH } from "../../../api/src/storage/local-store";

export interface ObservedResponse {
  readonly method: string;
  /** The request's path, query string excluded. */
  readonly path: string;
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

interface MediaType {
  readonly schema: object;
}

interface ResponseObject {
  readonly content?: Readonly<Record<string, MediaType>>;
}

interface Operation {
  readonly method: string;
  readonly template: string;
  readonly pattern: RegExp;
  readonly responses: Readonly<Record<string, ResponseObject>>;
}

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** /v1/systems/{id} → ^/v1/systems/[^/]+$ */
function pathPattern(template: string): RegExp {
  const escaped = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+");
  return new RegExp(`^${escaped}$`);
}

/** Why a response is outside the contract by design, or null. */
function outOfScope(observed: ObservedResponse): string | null {
  if (observed.method === "OPTIONS") return "a CORS preflight, answered by the CORS middleware";
  const local =
    observed.path === LOCAL_EVIDENCE_PATH || observed.path.startsWith(`${LOCAL_EVIDENCE_PATH}/`);
  if (local) return "a presigned upload or download URL of the local store, not an API operation";
  return null;
}

export class Contract {
  private readonly ajv = addFormats(new Ajv({ strict: false, allErrors: true }));
  private readonly validators = new Map<object, ValidateFunction>();
  private readonly operations: Operation[];
  private readonly components: object;

  constructor(document = servedDocument()) {
    this.components = document.components ?? {};
    this.operations = Object.entries(document.paths ?? {})
      .flatMap(([template, methods]) =>
        Object.entries(methods as Record<string, { responses: Operation["responses"] }>).map(
          ([method, operation]) => ({
            method: method.toUpperCase(),
            template,
            pattern: pathPattern(template),
            responses: operation.responses,
          }),
        ),
      )
      // A literal path wins over a template that also matches it.
      .sort(
        (a, b) => (a.template.match(/\{/g)?.length ?? 0) - (b.template.match(/\{/g)?.length ?? 0),
      );
  }

  /** What is wrong with `observed` according to the document; empty when nothing is. */
  problems(observed: ObservedResponse): string[] {
    if (outOfScope(observed) !== null) return [];
    const method = observed.method === "HEAD" ? "GET" : observed.method;
    const operation = this.operations.find(
      (candidate) => candidate.method === method && candidate.pattern.test(observed.path),
    );
    if (operation === undefined) return this.unknownRouteProblems(observed);
    const response = operation.responses[String(observed.status)];
    const where = `${observed.method} ${observed.path} → ${observed.status}`;
    if (response === undefined) {
      return [`${where}: status not documented for ${method} ${operation.template}`];
    }
    return this.bodyProblems(observed, response).map((problem) => `${where}: ${problem}`);
  }

  /** A path or method the API does not have: the Error body with 404. */
  private unknownRouteProblems(observed: ObservedResponse): string[] {
    const where = `${observed.method} ${observed.path} → ${observed.status}`;
    if (observed.status !== 404) return [`${where}: undocumented route answered other than 404`];
    return this.bodyProblems(observed, {
      content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
    }).map((problem) => `${where}: ${problem}`);
  }

  private bodyProblems(observed: ObservedResponse, response: ResponseObject): string[] {
    const content = response.content;
    if (content === undefined) {
      return observed.body === "" ? [] : ["a body was sent where the document declares none"];
    }
    const mediaType = observed.contentType.split(";")[0]?.trim() ?? "";
    const declared = content[mediaType];
    if (declared === undefined) {
      return [`media type "${mediaType}" is not one of ${Object.keys(content).join(", ")}`];
    }
    if (observed.method === "HEAD") return [];
    let body: unknown = observed.body;
    if (mediaType === "application/json") {
      try {
        body = JSON.parse(observed.body);
      } catch {
        return ["the body is not JSON"];
      }
    }
    const validate = this.validatorFor(declared.schema);
    if (validate(body)) return [];
    return (validate.errors ?? []).map(
      (error) => `body${error.instancePath} ${error.message ?? "is invalid"}`,
    );
  }

  private validatorFor(schema: object): ValidateFunction {
    let validate = this.validators.get(schema);
    if (validate === undefined) {
      // The schema's $refs (#/components/...) resolve against this wrapper's root.
      validate = this.ajv.compile({ allOf: [schema], components: this.components });
      this.validators.set(schema, validate);
    }
    return validate;
  }
}
