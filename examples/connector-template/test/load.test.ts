import { fileURLToPath, pathToFileURL } from "node:url";
import { ConnectorRegistry } from "@tandem/core";
import { Effect } from "effect";
import { describe, expect, it } from "vitest";

/** What the server does with each TANDEM_CONNECTORS entry: a path is imported as a file URL. */
const importPlugin = (specifier: string) =>
  import(specifier.startsWith("/") ? pathToFileURL(specifier).href : specifier) as Promise<unknown>;

const modulePath = fileURLToPath(new URL("../src/index.ts", import.meta.url));

describe("loading the template as a plugin", () => {
  it("ConnectorRegistry.load imports it by path beside the built-ins and validates it", async () => {
    const registry = await Effect.runPromise(ConnectorRegistry.load([modulePath], [], importPlugin));
    const taskboard = registry.get("taskboard");
    expect(taskboard?.version).toBe("0.1.0");
    expect(Object.keys(taskboard!.entities)).toEqual(["tasks"]);
  });

  it("loading it twice is the startup error an operator sees, naming the specifier", async () => {
    const error = await Effect.runPromise(
      Effect.flip(ConnectorRegistry.load([modulePath, modulePath], [], importPlugin)),
    );
    expect(error.specifier).toBe(modulePath);
    expect(error.message).toBe('a connector named "taskboard" is already loaded');
  });
});
