/** Priorities, highest first: lower numbers are claimed first. */
export const JobPriority = { webhook: 0, onDemand: 1, delta: 2, backfill: 3 } as const;
/** A priority by name: `webhook`, `onDemand`, `delta`, `backfill`. */
export type JobPriorityName = keyof typeof JobPriority;

/** A priority by name or number, as stored (`fallback` when absent). */
export const priorityValue = (
  p: JobPriorityName | number | undefined,
  fallback: number = JobPriority.onDemand,
): number => (p === undefined ? fallback : typeof p === "number" ? p : JobPriority[p]);
