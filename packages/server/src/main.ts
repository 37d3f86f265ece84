#!/usr/bin/env node
import { runServeCommand } from "./ServeCommand.ts";

const usage = `usage: tandem serve

Starts the Tandem server (tRPC API, webhooks, probes, worker, schedules).
Configuration comes from environment variables; see the README's configuration table.
The demo (sandboxes and a demo tenant syncing from them) is \`pnpm start\`, in @tandem/demo.`;

const fail = (message: string): never => {
  process.stderr.write(`tandem: ${message}\n`);
  process.exit(1);
};

const [command, ...flags] = process.argv.slice(2);
switch (command) {
  case "serve":
    if (flags.length > 0) fail(`unknown option ${flags[0]}\n${usage}`);
    await runServeCommand();
    break;
  case undefined:
  case "help":
  case "--help":
    process.stdout.write(`${usage}\n`);
    break;
  default:
    fail(`unknown command "${command}"\n${usage}`);
}
