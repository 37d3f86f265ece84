import { Cause, Context, Effect, Layer, Option, Random } from "effect";

/**
 * Why a job attempt failed, reduced to what the retry decision needs. Typed
 * failures keep their `_tag`; defects (infrastructure failures, thrown bugs)
 * are tagged `Defect` and treated as transient.
 */
export interface JobFailure {
  readonly tag: string;
  readonly message: string;
  readonly retryAfterMs?: number | undefined;
}

/** What to do after a failed attempt. */
export type RetryDecision =
  | { readonly _tag: "Retry"; readonly delayMs: number }
  /** An infrastructure fault: run again after `delayMs` without spending one of the job's attempts. */
  | { readonly _tag: "RetryUncounted"; readonly delayMs: number }
  | { readonly _tag: "RefreshCredentials" }
  | { readonly _tag: "GiveUp"; readonly reason: string };

/** Backoff and attempt limits. */
export interface RetryPolicyOptions {
  /** First backoff ceiling; doubles per attempt. Default 1 s. */
  readonly baseDelayMs?: number;
  /** Cap on the backoff ceiling. Default 5 min. */
  readonly maxDelayMs?: number;
  /** Attempts (first run included) before a job goes to the dead-letter queue. Default 5. */
  readonly defaultMaxAttempts?: number;
  /** Per connector name, overrides `defaultMaxAttempts` (e.g. `{ hubspot: 8 }`). */
  readonly maxAttemptsByConnector?: Readonly<Record<string, number>>;
  /**
   * Infrastructure faults a job may meet (see `infrastructureTags`) without spending its own
   * attempts; past them it goes to the dead-letter queue. Default 20.
   */
  readonly maxInfrastructureFaults?: number;
}

/**
 * The retry policy's configuration; a runtime that provides none gets the defaults. Provide it
 * once at the root of the composition: every service that builds the policy reads the same one.
 */
export class RetryPolicyConfig extends Context.Reference<RetryPolicyConfig>()("@tandem/core/RetryPolicyConfig", {
  defaultValue: (): RetryPolicyOptions => ({}),
}) {}

/** Tags that can never succeed on a retry: the input itself is wrong. */
const permanentTags = new Set(["InvalidRecord", "NotFound", "Conflict", "InvalidInput"]);

/**
 * Faults of our infrastructure, not of the job: the database connection failed under it
 * (`DatabaseUnavailable` with a connection failure: a terminated backend, a failover), its lease
 * expired (its process died or lost the database: `LeaseExpired`), or the lock it worked under was
 * lost that way (`LockLost`). A retry on a new connection or another process can succeed, and
 * the job did nothing wrong: such attempts are not counted against `maxAttempts`, only against
 * `maxInfrastructureFaults`, so a database that keeps failing for a while dead-letters no job,
 * while a job that always kills its process still ends.
 */
export const infrastructureTags: ReadonlySet<string> = new Set(["DatabaseUnavailable", "LeaseExpired", "LockLost"]);

/**
 * Whether an attempt that failed with `cause` is its job's last one by the attempt budgets (an
 * infrastructure fault spends only the infrastructure budget): for handlers that tell subscribers
 * about a job's final failure only.
 */
export const isLastAttempt = (
  policy: { readonly maxInfrastructureFaults: number },
  job: { readonly attempt: number; readonly maxAttempts: number; readonly infrastructureFaults: number },
  cause: Cause.Cause<unknown>,
): boolean => {
  const infrastructure = Option.exists(describeFailure(cause), (f) => infrastructureTags.has(f.tag));
  return infrastructure ? job.infrastructureFaults >= policy.maxInfrastructureFaults : job.attempt >= job.maxAttempts;
};

/** Reduces a handler's failure cause to a JobFailure (None when it was only interrupted). */
export const describeFailure = (cause: Cause.Cause<unknown>): Option.Option<JobFailure> => {
  const failure = Cause.failureOption(cause);
  if (Option.isSome(failure)) {
    const error = failure.value as { _tag?: unknown; message?: unknown; retryAfterMs?: unknown } | null;
    const tag = typeof error?._tag === "string" ? error._tag : "Error";
    const message = typeof error?.message === "string" ? error.message : String(error);
    const retryAfterMs = typeof error?.retryAfterMs === "number" ? error.retryAfterMs : undefined;
    return Option.some({ tag, message, retryAfterMs });
  }
  const defect = Cause.dieOption(cause);
  if (Option.isSome(defect)) {
    const d = defect.value as { _tag?: unknown; connectionFailure?: unknown; message?: unknown } | null;
    const message = typeof d?.message === "string" ? d.message : String(d);
    // The one defect a retry elsewhere can cure; any other (a bug, a rejected statement) stays a Defect.
    const lostConnection = d?._tag === "DatabaseUnavailable" && d.connectionFailure === true;
    return Option.some({ tag: lostConnection ? "DatabaseUnavailable" : "Defect", message });
  }
  return Option.none();
};

/**
 * The one place where a failed job's fate is decided, keyed by the error's tag:
 * - `Unavailable`, `RateLimited`, defects and unknown tags: retry with exponential
 *   backoff and full jitter (a uniform delay in [0, min(cap, base * 2^(attempt-1))]),
 *   never sooner than `retryAfterMs`, until `maxAttempts` is spent;
 * - `AuthExpired`: refresh credentials and retry once (in the same attempt), then give up;
 * - `InvalidRecord`, `NotFound`, `Conflict`, `InvalidInput`: never retried;
 * - infrastructure faults (`infrastructureTags`): retried uncounted with the same backoff (by
 *   the number of such faults), until `maxInfrastructureFaults` of them. A lease expiry is
 *   applied by the reaper's statement in the database, with `maxInfrastructureFaults` as its bound.
 * Jitter draws from Effect's `Random`, so tests can fix it.
 */
export class RetryPolicy extends Context.Tag("@tandem/core/RetryPolicy")<
  RetryPolicy,
  {
    readonly decide: (input: {
      readonly failure: JobFailure;
      /** The attempt that just failed, 1-based. */
      readonly attempt: number;
      readonly maxAttempts: number;
      /** Credentials were already refreshed during this attempt. */
      readonly credentialsRefreshed: boolean;
      /** Infrastructure faults the job met before this attempt. Default 0. */
      readonly infrastructureFaults?: number;
    }) => Effect.Effect<RetryDecision>;
    /** Max attempts for jobs of a connector (pass it to `JobQueue.enqueue`). */
    readonly maxAttemptsFor: (connector: string | undefined) => number;
    /** Infrastructure faults a job may meet before it goes to the dead-letter queue. */
    readonly maxInfrastructureFaults: number;
  }
>() {
  static make(config: RetryPolicyOptions = {}): Context.Tag.Service<RetryPolicy> {
    const base = config.baseDelayMs ?? 1_000;
    const cap = config.maxDelayMs ?? 300_000;
    const defaultMax = config.defaultMaxAttempts ?? 5;
    const maxInfrastructureFaults = config.maxInfrastructureFaults ?? 20;
    const backoff = (nth: number, retryAfterMs: number | undefined) =>
      Effect.map(Random.next, (r) => {
        const ceiling = Math.min(cap, base * 2 ** Math.max(0, nth - 1));
        return Math.max(Math.floor(r * ceiling), retryAfterMs ?? 0);
      });
    return {
      decide: Effect.fn("RetryPolicy.decide")(function* ({
        failure,
        attempt,
        maxAttempts,
        credentialsRefreshed,
        infrastructureFaults = 0,
      }) {
        if (infrastructureTags.has(failure.tag)) {
          if (infrastructureFaults >= maxInfrastructureFaults) {
            return {
              _tag: "GiveUp",
              reason: `gave up after ${infrastructureFaults + 1} infrastructure faults`,
            } as const;
          }
          return { _tag: "RetryUncounted", delayMs: yield* backoff(infrastructureFaults + 1, undefined) } as const;
        }
        if (permanentTags.has(failure.tag)) {
          return { _tag: "GiveUp", reason: `${failure.tag} is never retried` } as const;
        }
        if (failure.tag === "AuthExpired") {
          return credentialsRefreshed
            ? ({ _tag: "GiveUp", reason: "credentials refused again after a refresh" } as const)
            : ({ _tag: "RefreshCredentials" } as const);
        }
        if (attempt >= maxAttempts) {
          return { _tag: "GiveUp", reason: `gave up after ${attempt} attempts` } as const;
        }
        return { _tag: "Retry", delayMs: yield* backoff(attempt, failure.retryAfterMs) } as const;
      }),
      maxAttemptsFor: (connector) =>
        (connector !== undefined ? config.maxAttemptsByConnector?.[connector] : undefined) ?? defaultMax,
      maxInfrastructureFaults,
    };
  }

  /**
   * The policy configured by `RetryPolicyConfig` (defaults: 1 s base, 5 min cap, 5 attempts, 20
   * infrastructure faults).
   */
  static readonly layer = Layer.effect(RetryPolicy, Effect.map(RetryPolicyConfig, RetryPolicy.make));
}
