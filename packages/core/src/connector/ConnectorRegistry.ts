import type { AnyConnector } from "@tandem/connector-sdk";
import { Context, Data, Effect, Layer, Schema } from "effect";

/** A plugin could not be imported, or what it exports is not a connector. */
export class ConnectorLoadError extends Data.TaggedError("ConnectorLoadError")<{
  readonly specifier: string;
  readonly message: string;
}> {}

const isConnector = (value: unknown): value is AnyConnector => {
  const c = value as Partial<AnyConnector> | null;
  return (
    typeof c === "object" &&
    c !== null &&
    typeof c.name === "string" &&
    /^[a-z0-9][a-z0-9-]*$/.test(c.name) &&
    typeof c.version === "string" &&
    Schema.isSchema(c.config) &&
    typeof c.entities === "object" &&
    c.entities !== null
  );
};

/** What is wrong with a connector's entities (the first problem found), or undefined. */
const entityProblem = (connector: AnyConnector): string | undefined => {
  for (const [name, entity] of Object.entries(connector.entities)) {
    const e = entity as Partial<AnyConnector["entities"][string]> | null;
    if (typeof e !== "object" || e === null) return `entity "${name}" is not an object (use defineEntity)`;
    if (!Schema.isSchema(e.record)) return `entity "${name}": record must be an Effect Schema`;
    for (const member of ["primaryKey", "updatedAt", "read"] as const) {
      if (typeof e[member] !== "function") return `entity "${name}": ${member} must be a function`;
    }
    for (const member of ["readIds", "get", "getMany"] as const) {
      if (e[member] !== undefined && typeof e[member] !== "function") {
        return `entity "${name}": ${member} must be a function when given`;
      }
    }
    for (const member of ["criticalFields", "writableFields"] as const) {
      const fields = e[member];
      if (fields !== undefined && !(Array.isArray(fields) && fields.every((f) => typeof f === "string"))) {
        return `entity "${name}": ${member} must be an array of field names when given`;
      }
    }
    const interval = e.pushIntervalMs;
    if (interval !== undefined && !(typeof interval === "number" && Number.isFinite(interval) && interval >= 0)) {
      return `entity "${name}": pushIntervalMs must be a number of milliseconds when given`;
    }
  }
  return undefined;
};

export interface ConnectorRegistryService {
  readonly all: ReadonlyArray<AnyConnector>;
  readonly get: (name: string) => AnyConnector | undefined;
}

/** The connectors this process knows: the built-ins plus `TANDEM_CONNECTORS` plugins. */
export class ConnectorRegistry extends Context.Tag("@tandem/core/ConnectorRegistry")<
  ConnectorRegistry,
  ConnectorRegistryService
>() {
  static make(connectors: ReadonlyArray<AnyConnector>): ConnectorRegistryService {
    const byName = new Map(connectors.map((c) => [c.name, c]));
    return { all: [...byName.values()], get: (name) => byName.get(name) };
  }

  static layer(connectors: ReadonlyArray<AnyConnector>) {
    return Layer.succeed(ConnectorRegistry, ConnectorRegistry.make(connectors));
  }

  /**
   * Imports each module specifier (package name or path) and validates its default
   * export. A plugin that fails is named in the error, and nothing starts without it.
   */
  static load(
    specifiers: ReadonlyArray<string>,
    builtins: ReadonlyArray<AnyConnector>,
    importer: (specifier: string) => Promise<unknown>,
  ) {
    return Effect.gen(function* () {
      const loaded: Array<AnyConnector> = [...builtins];
      for (const specifier of specifiers) {
        const module = yield* Effect.tryPromise({
          try: () => importer(specifier),
          catch: (e) =>
            new ConnectorLoadError({
              specifier,
              message: `cannot import: ${e instanceof Error ? e.message : String(e)}`,
            }),
        });
        const candidate = (module as { default?: unknown }).default ?? module;
        if (!isConnector(candidate)) {
          return yield* new ConnectorLoadError({
            specifier,
            message:
              "default export is not a connector (expected defineConnector({ name, version, config, entities }))",
          });
        }
        const problem = entityProblem(candidate);
        if (problem !== undefined) {
          return yield* new ConnectorLoadError({ specifier, message: `connector "${candidate.name}": ${problem}` });
        }
        if (loaded.some((c) => c.name === candidate.name)) {
          return yield* new ConnectorLoadError({
            specifier,
            message: `a connector named "${candidate.name}" is already loaded`,
          });
        }
        loaded.push(candidate);
      }
      return ConnectorRegistry.make(loaded);
    });
  }
}
