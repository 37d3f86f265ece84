import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { JobHandlerSpec, WorkerOptions } from "../JobQueue.ts";

/** A worker's options with their defaults applied. */
export interface WorkerSettings {
  readonly workerId: string;
  readonly concurrency: number;
  readonly perConnection: number;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly pollMs: number;
  readonly reapMs: number;
  readonly shutdownTimeoutMs: number;
  readonly prefetch: number;
  readonly retentionMs: number;
  /** Handlers by job kind, each as a spec. */
  readonly handlers: ReadonlyMap<string, JobHandlerSpec>;
  /** The kinds this worker claims. */
  readonly kinds: ReadonlyArray<string>;
}

/** Applies the defaults documented on WorkerOptions. */
export const workerSettings = (options: WorkerOptions): WorkerSettings => {
  const leaseMs = Math.max(100, options.leaseMs ?? 30_000);
  const handlers = new Map(
    Object.entries(options.handlers).map(([kind, h]) => [kind, typeof h === "function" ? { run: h } : h] as const),
  );
  return {
    workerId: options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    concurrency: Math.max(1, options.concurrency ?? 10),
    perConnection: Math.max(1, options.perConnectionConcurrency ?? 4),
    leaseMs,
    heartbeatMs: options.heartbeatMs ?? Math.floor(leaseMs / 3),
    pollMs: options.pollMs ?? 2_000,
    reapMs: options.reapMs ?? Math.floor(leaseMs / 2),
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 10_000,
    prefetch: Math.max(0, Math.floor(options.prefetch ?? 0)),
    retentionMs: options.retentionMs ?? 7 * 24 * 3_600_000,
    handlers,
    kinds: [...handlers.keys()],
  };
};
