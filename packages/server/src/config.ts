import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  type DatabaseConfig,
  defaultPushIntervalMs,
  type EgressAllowList,
  generateSecretKey,
  parseEgressAllowList,
  parseSecretKey,
} from "@tandem/core";
import { Config, type ConfigError, ConfigProvider, Data, Effect, Either, LogLevel, Option, Redacted } from "effect";

/** Configuration could not be read or is invalid; `message` is one line for the operator. */
export class StartupError extends Data.TaggedError("StartupError")<{ readonly message: string }> {}

export interface ServerConfig {
  readonly database: DatabaseConfig;
  readonly dataDir: string;
  readonly secretKey: Redacted.Redacted<Buffer>;
  readonly adminKey: Option.Option<Redacted.Redacted<string>>;
  readonly port: number;
  readonly host: string;
  readonly logLevel: LogLevel.LogLevel;
  readonly connectorSpecifiers: ReadonlyArray<string>;
  /** OTLP/HTTP collector base URL (spans go to `<url>/v1/traces`). */
  readonly otlpEndpoint: Option.Option<string>;
  /** Whether this process runs jobs and schedules, and how many jobs at once. */
  readonly worker: { readonly enabled: boolean; readonly concurrency: number };
  readonly retry: { readonly defaultMaxAttempts: number; readonly maxDelayMs: number };
  readonly schedules: {
    readonly deltaCron: string;
    readonly reconcileCron: string;
    readonly safetyNetReconcileCron: string;
    readonly alertsCron: string;
  };
  /** The mass-deletion guard's thresholds (see DeletionQuarantine in core). */
  readonly deletionGuard: {
    readonly maxDeletions: number;
    readonly windowMinutes: number;
    readonly maxDeleteShare: number;
  };
  /** Local changes that touch no critical field are pushed within this (entities may declare their own). */
  readonly push: { readonly intervalMs: number };
  /** Inbound webhook bodies above this are refused with 413. */
  readonly webhookMaxBytes: number;
  /** Bounds of an API request (`/trpc`): body bytes (413 beyond), calls in one batch (400 beyond). */
  readonly api: { readonly maxBodyBytes: number; readonly maxBatchSize: number };
  /** `/metrics` wants `Authorization: Bearer <this token or the admin key>`. */
  readonly metricsToken: Option.Option<Redacted.Redacted<string>>;
  /** Live `jobs.watch` subscriptions a tenant may hold at once (per process). */
  readonly maxWatchersPerTenant: number;
  /** Private hosts and ranges outbound requests may reach anyway (the egress policy's exceptions). */
  readonly egressAllow: EgressAllowList;
}

const logLevels: Record<string, LogLevel.LogLevel> = {
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warn: LogLevel.Warning,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  fatal: LogLevel.Fatal,
  none: LogLevel.None,
};

/** Every environment variable the server reads (documented in the README's table). */
const env = Config.all({
  databaseUrl: Config.option(Config.string("DATABASE_URL")),
  dataDir: Config.string("TANDEM_DATA_DIR").pipe(Config.withDefault(".tandem")),
  secretKey: Config.option(Config.redacted("TANDEM_SECRET_KEY")),
  adminKey: Config.option(Config.redacted("TANDEM_ADMIN_KEY")),
  port: Config.integer("PORT").pipe(
    Config.withDefault(3000),
    Config.validate({ message: "must be between 0 and 65535", validation: (p) => p >= 0 && p <= 65535 }),
  ),
  host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1")),
  logLevel: Config.string("LOG_LEVEL").pipe(
    Config.withDefault("info"),
    Config.validate({
      message: `must be one of ${Object.keys(logLevels).join(", ")}`,
      validation: (l) => l.toLowerCase() in logLevels,
    }),
  ),
  connectors: Config.string("TANDEM_CONNECTORS").pipe(Config.withDefault("")),
  poolSize: Config.integer("TANDEM_DB_POOL_SIZE").pipe(Config.withDefault(10)),
  otlpEndpoint: Config.option(Config.url("OTEL_EXPORTER_OTLP_ENDPOINT")),
  worker: Config.boolean("TANDEM_WORKER").pipe(Config.withDefault(true)),
  workerConcurrency: Config.integer("TANDEM_WORKER_CONCURRENCY").pipe(
    Config.withDefault(10),
    Config.validate({ message: "must be at least 1", validation: (n) => n >= 1 }),
  ),
  maxAttempts: Config.integer("TANDEM_MAX_ATTEMPTS").pipe(
    Config.withDefault(5),
    Config.validate({ message: "must be at least 1", validation: (n) => n >= 1 }),
  ),
  maxBackoffMs: Config.integer("TANDEM_MAX_BACKOFF_MS").pipe(Config.withDefault(300_000)),
  deltaCron: Config.string("TANDEM_DELTA_CRON").pipe(Config.withDefault("*/15 * * * *")),
  reconcileCron: Config.string("TANDEM_RECONCILE_CRON").pipe(Config.withDefault("0 3 * * *")),
  safetyNetReconcileCron: Config.string("TANDEM_RECONCILE_SAFETY_NET_CRON").pipe(Config.withDefault("0 3 * * 0")),
  massDeleteMax: Config.integer("TANDEM_MASS_DELETE_MAX").pipe(
    Config.withDefault(100),
    Config.validate({ message: "must be at least 0", validation: (n) => n >= 0 }),
  ),
  massDeleteWindowMinutes: Config.integer("TANDEM_MASS_DELETE_WINDOW_MINUTES").pipe(
    Config.withDefault(60),
    Config.validate({ message: "must be between 1 and 10080 (a week)", validation: (n) => n >= 1 && n <= 10_080 }),
  ),
  massDeleteMaxShare: Config.number("TANDEM_MASS_DELETE_MAX_SHARE").pipe(
    Config.withDefault(0.2),
    Config.validate({ message: "must be between 0 and 1", validation: (n) => n >= 0 && n <= 1 }),
  ),
  alertsCron: Config.string("TANDEM_ALERTS_CRON").pipe(Config.withDefault("* * * * *")),
  pushIntervalMs: Config.integer("TANDEM_PUSH_INTERVAL_MS").pipe(
    Config.withDefault(defaultPushIntervalMs),
    Config.validate({ message: "must be 0 or more (milliseconds)", validation: (n) => n >= 0 }),
  ),
  webhookMaxBytes: Config.integer("TANDEM_WEBHOOK_MAX_BYTES").pipe(Config.withDefault(1_048_576)),
  // The largest legitimate request is a 1,000-change `sync.push`: 353 KB with every HubSpot contact
  // field filled, 1.4 MB with a 1,000-character text field on each record. 4 MiB leaves room above
  // both, and stops a 100 MB body (which parsed whole exhausted the heap) at its first 4 MiB.
  maxBodyBytes: Config.integer("TANDEM_MAX_BODY_BYTES").pipe(
    Config.withDefault(4_194_304),
    Config.validate({ message: "must be at least 1024", validation: (n) => n >= 1024 }),
  ),
  maxBatchSize: Config.integer("TANDEM_MAX_BATCH_SIZE").pipe(
    Config.withDefault(50),
    Config.validate({ message: "must be at least 1", validation: (n) => n >= 1 }),
  ),
  metricsToken: Config.option(Config.redacted("TANDEM_METRICS_TOKEN")),
  maxWatchersPerTenant: Config.integer("TANDEM_MAX_WATCHERS_PER_TENANT").pipe(
    Config.withDefault(20),
    Config.validate({ message: "must be at least 1", validation: (n) => n >= 1 }),
  ),
  egressAllow: Config.string("TANDEM_EGRESS_ALLOW").pipe(Config.withDefault("")),
});

const configErrorLine = (error: ConfigError.ConfigError): string => {
  const paths: Array<string> = [];
  const collect = (e: ConfigError.ConfigError): void => {
    switch (e._op) {
      case "And":
      case "Or":
        collect(e.left);
        collect(e.right);
        return;
      case "InvalidData":
      case "MissingData":
      case "SourceUnavailable":
      case "Unsupported":
        paths.push(`${e.path.join(".")}: ${e.message}`);
    }
  };
  collect(error);
  return `invalid configuration: ${paths.join("; ")}`;
};

/**
 * Reads a key file from the data directory, or generates one and writes it with
 * mode 600. Returns the value and whether it was just created.
 */
export const readOrCreateKeyFile = (dataDir: string, file: string, generate: () => string) => {
  const path = join(dataDir, file);
  if (existsSync(path)) return { value: readFileSync(path, "utf8").trim(), created: false, path };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const value = generate();
  writeFileSync(path, `${value}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(path, 0o600);
  return { value, created: true, path };
};

/**
 * Loads and validates the configuration. Embedded mode generates the credential
 * key on first start (written to the data dir); with Postgres it must be given,
 * since every process sharing the database needs the same key.
 */
export const loadConfig = Effect.gen(function* () {
  const raw = yield* env.pipe(Effect.mapError((e) => new StartupError({ message: configErrorLine(e) })));
  const dataDir = resolve(raw.dataDir);
  const database: DatabaseConfig = Option.match(raw.databaseUrl, {
    onNone: () => ({ kind: "pglite", dataDir: join(dataDir, "pgdata") }),
    onSome: (url) => ({ kind: "postgres", url, poolSize: raw.poolSize }),
  });
  const secretText = yield* Option.match(raw.secretKey, {
    onSome: (k) => Effect.succeed(Redacted.value(k)),
    onNone: () =>
      database.kind === "postgres"
        ? Effect.fail(
            new StartupError({
              message:
                "TANDEM_SECRET_KEY is required with DATABASE_URL (all processes must share it); generate one with `openssl rand -base64 32`",
            }),
          )
        : Effect.try({
            try: () => readOrCreateKeyFile(dataDir, "secret.key", generateSecretKey).value,
            catch: (e) => new StartupError({ message: `cannot write ${join(dataDir, "secret.key")}: ${String(e)}` }),
          }),
  });
  const secretKey = yield* parseSecretKey(secretText).pipe(
    Effect.mapError((e) => new StartupError({ message: e.message })),
  );
  const egressAllow = yield* Either.match(parseEgressAllowList(raw.egressAllow), {
    onLeft: (message) =>
      Effect.fail(new StartupError({ message: `invalid configuration: TANDEM_EGRESS_ALLOW: ${message}` })),
    onRight: Effect.succeed,
  });
  const specifiers = raw.connectors
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return {
    database,
    dataDir,
    secretKey: Redacted.make(secretKey),
    adminKey: raw.adminKey,
    port: raw.port,
    host: raw.host,
    logLevel: logLevels[raw.logLevel.toLowerCase()] ?? LogLevel.Info,
    connectorSpecifiers: specifiers,
    otlpEndpoint: Option.map(raw.otlpEndpoint, (u) => u.toString().replace(/\/$/, "")),
    worker: { enabled: raw.worker, concurrency: raw.workerConcurrency },
    retry: { defaultMaxAttempts: raw.maxAttempts, maxDelayMs: raw.maxBackoffMs },
    schedules: {
      deltaCron: raw.deltaCron,
      reconcileCron: raw.reconcileCron,
      safetyNetReconcileCron: raw.safetyNetReconcileCron,
      alertsCron: raw.alertsCron,
    },
    deletionGuard: {
      maxDeletions: raw.massDeleteMax,
      windowMinutes: raw.massDeleteWindowMinutes,
      maxDeleteShare: raw.massDeleteMaxShare,
    },
    push: { intervalMs: raw.pushIntervalMs },
    webhookMaxBytes: raw.webhookMaxBytes,
    api: { maxBodyBytes: raw.maxBodyBytes, maxBatchSize: raw.maxBatchSize },
    metricsToken: raw.metricsToken,
    maxWatchersPerTenant: raw.maxWatchersPerTenant,
    egressAllow,
  } satisfies ServerConfig;
});

export const configFromEnv = (source: Record<string, string | undefined>) =>
  loadConfig.pipe(Effect.withConfigProvider(providerFrom(source)));

/** Reads config from an explicit env map (tests, child processes) instead of process.env. */
const providerFrom = (source: Record<string, string | undefined>) =>
  ConfigProvider.fromMap(
    new Map(Object.entries(source).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== "")),
  );
