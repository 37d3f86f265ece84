import { Cause, Effect, Exit, Option } from "effect";
import { loadConfig, type ServerConfig } from "./config.ts";
import { type RunningServer, startServer } from "./Server.ts";

/** Something started beside the server (the demo's sandboxes), stopped before it on shutdown. */
export interface ServeCompanion {
  readonly close: () => Promise<void>;
}

export interface ServeCommandOptions {
  /** Adjusts the configuration read from the environment before the server starts. */
  readonly configure?: (config: ServerConfig) => ServerConfig;
  /** Starts once the server listens; a rejection stops the process with its message. */
  readonly startCompanion?: (server: RunningServer, config: ServerConfig) => Promise<ServeCompanion>;
}

const fail = (message: string): never => {
  process.stderr.write(`tandem: ${message}\n`);
  process.exit(1);
};

/**
 * `tandem serve`: reads the configuration from the environment, starts the server, prints where it
 * listens (and the admin key on a first start), and shuts down on SIGTERM or SIGINT. A wrapper
 * such as the demo passes options to start more beside it; the server itself knows no demo.
 */
export const runServeCommand = async (options: ServeCommandOptions = {}): Promise<void> => {
  const loaded = await Effect.runPromiseExit(loadConfig);
  if (Exit.isFailure(loaded)) {
    const failure = Cause.failureOption(loaded.cause);
    return fail(Option.isSome(failure) ? failure.value.message : "invalid configuration");
  }
  const config = options.configure === undefined ? loaded.value : options.configure(loaded.value);
  const server = await startServer(config, {
    onAdminKeyCreated: (key, path) => {
      // Printed once, on the first start; kept (mode 600) in the data directory.
      process.stdout.write(`\nAdmin API key (shown once, also saved to ${path}):\n  ${key}\n\n`);
    },
  }).catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)));
  process.stdout.write(`Tandem listening on ${server.url} (database: ${config.database.kind})\n`);
  const companion =
    options.startCompanion === undefined
      ? undefined
      : await options
          .startCompanion(server, config)
          .catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)));

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: shutting down\n`);
    const deadline = setTimeout(() => fail("shutdown took longer than 30s; exiting"), 30_000);
    deadline.unref();
    Promise.resolve(companion?.close())
      .then(() => server.close())
      .then(
        () => process.exit(0),
        (e: unknown) => fail(`shutdown failed: ${e instanceof Error ? e.message : String(e)}`),
      );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
};
