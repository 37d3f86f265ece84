import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "@effect/vitest";
import { ConnectorRegistry } from "@tandem/core";
import { acmeConnector } from "@tandem/testkit";
import { Effect } from "effect";

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), "..", "fixtures");

/** What the server does with TANDEM_CONNECTORS entries: paths relative to a directory, or package names. */
const importer = (specifier: string) =>
  import(specifier.startsWith(".") ? pathToFileURL(resolve(fixtures, specifier)).href : specifier);

describe("ConnectorRegistry.load", () => {
  it.effect("loads a plugin by path beside the built-ins", () =>
    Effect.gen(function* () {
      const registry = yield* ConnectorRegistry.load(["./plugin-connector.ts"], [acmeConnector], importer);
      expect(registry.all.map((c) => c.name)).toEqual(["acme-crm", "fixture-plugin"]);
      expect(Object.keys(registry.get("fixture-plugin")!.entities)).toEqual(["notes"]);
    }),
  );

  it.effect("loads a plugin by package name", () =>
    Effect.gen(function* () {
      // @tandem/testkit stands in for a published plugin package: its module has no default
      // connector, so this checks the specifier reaches the package resolver and is validated.
      const error = yield* ConnectorRegistry.load(["@tandem/testkit"], [], importer).pipe(Effect.flip);
      expect(error.specifier).toBe("@tandem/testkit");
      expect(error.message).toContain("not a connector");
    }),
  );

  it.effect("names a plugin whose default export is not a connector", () =>
    Effect.gen(function* () {
      const error = yield* ConnectorRegistry.load(
        ["./plugin-connector.ts", "./plugin-not-a-connector.ts"],
        [],
        importer,
      ).pipe(Effect.flip);
      expect(error._tag).toBe("ConnectorLoadError");
      expect(error.specifier).toBe("./plugin-not-a-connector.ts");
      expect(error.message).toMatch(/default export is not a connector/);
    }),
  );

  it.effect("validates each entity of a plugin", () =>
    Effect.gen(function* () {
      const error = yield* ConnectorRegistry.load(["./plugin-bad-entity.ts"], [], importer).pipe(Effect.flip);
      expect(error).toMatchObject({
        specifier: "./plugin-bad-entity.ts",
        message: 'connector "bad-entity": entity "things": read must be a function',
      });
    }),
  );

  it.effect("refuses an entity whose getMany is not a function", () =>
    Effect.gen(function* () {
      const error = yield* ConnectorRegistry.load(["./plugin-bad-get-many.ts"], [], importer).pipe(Effect.flip);
      expect(error).toMatchObject({
        specifier: "./plugin-bad-get-many.ts",
        message: 'connector "bad-get-many": entity "things": getMany must be a function when given',
      });
    }),
  );

  it.effect("names a plugin that throws while loading, with the cause", () =>
    Effect.gen(function* () {
      const error = yield* ConnectorRegistry.load(["./plugin-throws.ts"], [], importer).pipe(Effect.flip);
      expect(error).toMatchObject({ specifier: "./plugin-throws.ts" });
      expect(error.message).toContain("ACME_REGION is not set");
    }),
  );

  it.effect("names a plugin that does not exist", () =>
    Effect.gen(function* () {
      const error = yield* ConnectorRegistry.load(["@acme/no-such-connector"], [], importer).pipe(Effect.flip);
      expect(error.specifier).toBe("@acme/no-such-connector");
      expect(error.message).toMatch(/^cannot import: /);
    }),
  );

  it.effect("refuses a plugin whose name collides with a loaded connector", () =>
    Effect.gen(function* () {
      const error = yield* ConnectorRegistry.load(
        ["./plugin-connector.ts", "./plugin-connector.ts"],
        [],
        importer,
      ).pipe(Effect.flip);
      expect(error.message).toBe('a connector named "fixture-plugin" is already loaded');
    }),
  );
});
