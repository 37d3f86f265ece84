import type { AnyRouter } from "@trpc/server";
import { JSONSchema, Schema } from "effect";

interface ProcedureDef {
  readonly type: "query" | "mutation" | "subscription";
  readonly inputs: ReadonlyArray<unknown>;
}

/** JSON Schema of a procedure's input: our inputs are Effect Schemas (as Standard Schema). */
const inputSchema = (def: ProcedureDef): object | undefined => {
  const parser = def.inputs[0];
  return parser !== undefined && Schema.isSchema(parser)
    ? JSONSchema.make(parser as Schema.Schema<unknown>)
    : undefined;
};

const errorResponse = {
  description: "A tRPC error: `error.data.code` is the code (UNAUTHORIZED, NOT_FOUND, BAD_REQUEST with `issues`...)",
  content: { "application/json": { schema: { type: "object", properties: { error: { type: "object" } } } } },
};

/**
 * An OpenAPI 3.1 document of the tRPC router, for non-TypeScript clients. It
 * describes tRPC's own HTTP mapping: a query is `GET /trpc/<path>?input=<JSON>`,
 * a mutation `POST /trpc/<path>` with a JSON body, and results come wrapped as
 * `{ result: { data } }`. Subscriptions are SSE streams (`GET`, text/event-stream).
 * Input schemas come from the procedures' Effect Schemas via Effect's JSONSchema.
 */
export const openApiDocument = (router: AnyRouter, options: { readonly version: string }) => {
  const procedures = router._def.procedures as Record<string, { readonly _def: ProcedureDef }>;
  const paths: Record<string, object> = {};
  for (const [path, procedure] of Object.entries(procedures).sort(([a], [b]) => a.localeCompare(b))) {
    const def = procedure._def;
    const schema = inputSchema(def);
    const ok = {
      description: def.type === "subscription" ? "Server-sent events, one per emitted value" : "Success",
      content:
        def.type === "subscription"
          ? { "text/event-stream": { schema: { type: "string" } } }
          : {
              "application/json": {
                schema: { type: "object", properties: { result: { type: "object", properties: { data: {} } } } },
              },
            },
    };
    const operation = {
      operationId: path,
      tags: [path.includes(".") ? path.slice(0, path.indexOf(".")) : "health"],
      ...(path === "health" ? { security: [] } : {}),
      responses: { "200": ok, "4XX": errorResponse },
    };
    paths[`/trpc/${path}`] =
      def.type === "mutation"
        ? {
            post: {
              ...operation,
              ...(schema ? { requestBody: { required: true, content: { "application/json": { schema } } } } : {}),
            },
          }
        : {
            get: {
              ...operation,
              ...(schema
                ? {
                    parameters: [
                      {
                        name: "input",
                        in: "query",
                        required: true,
                        description: "The input, JSON-encoded",
                        content: { "application/json": { schema } },
                      },
                    ],
                  }
                : {}),
            },
          };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Tandem API",
      version: options.version,
      description: "tRPC procedures over HTTP. TypeScript clients should prefer @trpc/client with the AppRouter type.",
    },
    servers: [{ url: "/" }],
    security: [{ bearer: [] }],
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "A Tandem API key" } } },
    paths,
  };
};
