/** The payload of every benchmark job: when it was handed to the queue, for claim latency. */
export interface NoopJobPayload {
  readonly enqueuedAtMs: number;
}

/**
 * A durable queue under test, driven the same way for graphile-worker, pg-boss and Tandem's
 * job queue: bulk backlog, N workers running a no-op handler, and single enqueues for latency.
 */
export interface QueueSubject {
  readonly name: string;
  /** Installs the queue's schema and creates the queue (not timed). */
  readonly setup: () => Promise<void>;
  /** Inserts `count` jobs at once, as fast as the library allows (timed separately). */
  readonly enqueueBacklog: (count: number) => Promise<void>;
  /** Starts `workers` concurrent workers whose handler only calls `onJob` with the payload. */
  readonly startWorkers: (workers: number, onJob: (payload: NoopJobPayload) => void) => Promise<void>;
  /** Enqueues one job now (the latency phase). */
  readonly enqueueOne: (payload: NoopJobPayload) => Promise<void>;
  /** Stops the workers and closes every connection. */
  readonly stop: () => Promise<void>;
}
