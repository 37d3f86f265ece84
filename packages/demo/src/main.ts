#!/usr/bin/env node
import { parseEgressAllowList } from "@tandem/core";
import { runServeCommand, type ServerConfig } from "@tandem/server";
import { Either } from "effect";
import { startDemo } from "./demo.ts";

/*
 * `pnpm start`: the Tandem server (`tandem serve`, configured from the environment as ever) with
 * the sandboxes and a demo tenant syncing from them.
 */

if (process.argv.length > 2) {
  process.stderr.write(`tandem-demo: unknown option ${process.argv[2]}\nusage: tandem-demo (takes no options)\n`);
  process.exit(1);
}

/** The demo's sandboxes listen on 127.0.0.1, which the egress policy refuses unless allowed. */
const withDemoEgress = (config: ServerConfig): ServerConfig => ({
  ...config,
  egressAllow: Either.getOrThrow(parseEgressAllowList([...config.egressAllow.entries, "127.0.0.1"].join(","))),
});

await runServeCommand({
  configure: withDemoEgress,
  startCompanion: async (server, config) => {
    const demo = await startDemo(server, config.dataDir).catch((e: unknown) => {
      throw new Error(`demo failed to start: ${String(e)}`);
    });
    const { state } = demo;
    process.stdout.write(
      [
        "",
        `Demo: sandboxes on loopback, their records changing as you watch:`,
        `  HubSpot at ${demo.sandboxUrl} (3,000 contacts, 300 companies): connection ${state.connectionId}`,
        `  Salesforce at ${demo.salesforceUrl} (600 contacts, 60 accounts): connection ${state.salesforceConnectionId}`,
        `  Business Central at ${demo.erpUrl} (400 items, 80 customers): connection ${state.erpConnectionId}`,
        "  outbound requests may reach 127.0.0.1 (the sandboxes) in demo mode",
        `  tenant API key (also in ${config.dataDir}/demo.json): ${state.apiKey}`,
        "  watch it sync:",
        `    curl -s -H "authorization: Bearer ${state.apiKey}" '${server.url}/trpc/sync.status?input=${encodeURIComponent(JSON.stringify({ connectionId: state.connectionId }))}'`,
        `  dashboard: ${server.url}/`,
        "",
      ].join("\n"),
    );
    return demo;
  },
});
