import type { BenchOptions } from "./BenchOptions.ts";
import { TandemNotIntegrated } from "./tandem/TandemNotIntegrated.ts";

/** The figures of one measured subject, by name (e.g. `recordsPerSecond`, `peakRssMb`). */
export type Figures = Readonly<Record<string, number>>;

/** How a scenario is charted and compared: its one headline figure. */
export interface Headline {
  readonly figure: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
}

/** One target of issue 7, checked against the figures of this run. */
export interface TargetCheck {
  readonly target: string;
  /** The measured value the target is about; null when Tandem's side could not be measured. */
  readonly value: number | null;
  readonly met: boolean | null;
}

/** One entry of `results/latest.json`. */
export interface ScenarioResult {
  readonly scenario: string;
  readonly parameters: Readonly<Record<string, number | string>>;
  readonly headline: Headline;
  /** Tandem's figures per variant, or null (see `tandemUnavailable`). */
  readonly tandem: Readonly<Record<string, Figures>> | null;
  readonly tandemUnavailable?: string;
  /** Baselines measured in the same run on the same data. */
  readonly baselines: Readonly<Record<string, Figures>>;
  /** Figures that bound what anyone can reach here (e.g. reading the source without writing). */
  readonly references: Readonly<Record<string, Figures>>;
  /** Tandem against the baselines of this run (the machine is noisy: never against old runs). */
  readonly ratios: Readonly<Record<string, number | null>>;
  readonly targets: ReadonlyArray<TargetCheck>;
  readonly notes: ReadonlyArray<string>;
}

export interface ScenarioContext {
  readonly options: BenchOptions;
  /**
   * A PostgreSQL database URL for one subject of the scenario: a fresh database unless
   * `DATABASE_URL` was given. Dropped when the scenario ends.
   */
  readonly database: (label: string) => Promise<string>;
  readonly log: (message: string) => void;
}

/** A benchmark scenario: measures Tandem and its baselines on the same data, in one run. */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly run: (ctx: ScenarioContext) => Promise<ScenarioResult>;
}

/** Tandem's figures, or the reason there are none (an engine part not integrated yet). */
export type TandemOutcome<A> =
  | { readonly ok: true; readonly value: A }
  | { readonly ok: false; readonly reason: string };

/** Runs a Tandem measurement; a missing engine part becomes a reason, any other error propagates. */
export const measureTandem = async <A>(f: () => Promise<A>): Promise<TandemOutcome<A>> => {
  try {
    return { ok: true, value: await f() };
  } catch (error) {
    if (error instanceof TandemNotIntegrated) return { ok: false, reason: error.message };
    throw error;
  }
};

/** a / b, or null when either side is missing. */
export const ratio = (a: number | undefined | null, b: number | undefined | null): number | null =>
  a === undefined || a === null || b === undefined || b === null || b === 0 ? null : a / b;

export const atLeast = (target: string, value: number | null, limit: number): TargetCheck => ({
  target,
  value,
  met: value === null ? null : value >= limit,
});

export const atMost = (target: string, value: number | null, limit: number): TargetCheck => ({
  target,
  value,
  met: value === null ? null : value <= limit,
});

export const bytesToMb = (bytes: number): number => bytes / (1024 * 1024);
