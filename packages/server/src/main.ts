#!/usr/bin/env node
import { parseEgressAllowList } from "@tandem/core";
import { Cause, Effect, Either, Exit, Option } from "effect";
import { loadConfig, type ServerConfig } from "./config.ts";
import { startServer } from "./Server.ts";

const usage = `usage: tandem serve [--demo]

Starts the Tandem server (tRPC API, webhooks, probes, worker, schedules).
Configuration comes from environment variables; see the README's configuration table.

  --demo   also start the built-in HubSpot sandbox and a demo tenant syncing from it`;

const fail = (message: string): never => {
  process.stderr.write(`tandem: ${message}\n`);
  process.exit(1);
};

/** The demo's sandboxes listen on 127.0.0.1, which the egress policy refuses unless allowed. */
const withDemoEgress = (config: ServerConfig): ServerConfig => ({
  ...config,
  egressAllow: Either.getOrThrow(parseEgressAllowList([...config.egressAllow.entries, "127.0.0.1"].join(","))),
});

const serveCommand = async (flags: ReadonlyArray<string>) => {
  const unknown = flags.filter((f) => f !== "--demo");
  if (unknown.length > 0) return fail(`unknown option ${unknown[0]}\n${usage}`);
  const config = await Effect.runPromiseExit(loadConfig);
  if (Exit.isFailure(config)) {
    const failure = Cause.failureOption(config.cause);
    return fail(Option.isSome(failure) ? failure.value.message : "invalid configuration");
  }
  const demoMode = flags.includes("--demo");
  const server = await startServer(demoMode ? withDemoEgress(config.value) : config.value, {
    onAdminKeyCreated: (key, path) => {
      // Printed once, on the first start; kept (mode 600) in the data directory.
      process.stdout.write(`\nAdmin API key (shown once, also saved to ${path}):\n  ${key}\n\n`);
    },
  }).catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)));
  process.stdout.write(`Tandem listening on ${server.url} (database: ${config.value.database.kind})\n`);
  const demo = demoMode
    ? // Loaded only for the demo: the sandbox pulls in the testkit, which production never needs.
      await import("./demo.ts")
        .then(({ startDemo }) => startDemo(server, config.value.dataDir))
        .catch((e: unknown) => fail(`demo failed to start: ${String(e)}`))
    : undefined;
  if (demo !== undefined) {
    const { state } = demo;
    process.stdout.write(
      [
        "",
        `Demo: sandboxes on loopback, their records changing as you watch:`,
        `  HubSpot at ${demo.sandboxUrl} (3,000 contacts, 300 companies): connection ${state.connectionId}`,
        `  Salesforce at ${demo.salesforceUrl} (600 contacts, 60 accounts): connection ${state.salesforceConnectionId}`,
        `  Business Central at ${demo.erpUrl} (400 items, 80 customers): connection ${state.erpConnectionId}`,
        "  outbound requests may reach 127.0.0.1 (the sandboxes) in demo mode",
        `  tenant API key (also in ${config.value.dataDir}/demo.json): ${state.apiKey}`,
        "  watch it sync:",
        `    curl -s -H "authorization: Bearer ${state.apiKey}" '${server.url}/trpc/sync.status?input=${encodeURIComponent(JSON.stringify({ connectionId: state.connectionId }))}'`,
        `  dashboard: ${server.url}/`,
        "",
      ].join("\n"),
    );
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: shutting down\n`);
    const deadline = setTimeout(() => fail("shutdown took longer than 30s; exiting"), 30_000);
    deadline.unref();
    Promise.resolve(demo?.close())
      .then(() => server.close())
      .then(
        () => process.exit(0),
        (e: unknown) => fail(`shutdown failed: ${e instanceof Error ? e.message : String(e)}`),
      );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
};

const [command, ...flags] = process.argv.slice(2);
switch (command) {
  case "serve":
    await serveCommand(flags);
    break;
  case undefined:
  case "help":
  case "--help":
    process.stdout.write(`${usage}\n`);
    break;
  default:
    fail(`unknown command "${command}"\n${usage}`);
}
