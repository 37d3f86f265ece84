import cron, { type ParsedFields, type ScheduledTask } from "node-cron";

/**
 * Tick arithmetic over node-cron expressions, at a time we pass in (the Effect Clock),
 * never the wall clock: node-cron's own timers cannot be driven by TestClock, so it
 * serves here only to parse and to match (`match(date)`), on tasks that are never started.
 * Schedules are evaluated in UTC.
 */
export interface CronExpression {
  readonly pattern: string;
  readonly fields: ParsedFields;
  readonly task: ScheduledTask;
}

const cache = new Map<string, CronExpression>();
const DAY = 86_400_000;
/** How far ahead a tick is looked for before an expression is deemed never to fire (Feb 30...). */
const SEARCH_DAYS = 366 * 5;

/** Parses a 5- or 6-field (with seconds) expression; throws with node-cron's message if invalid. */
export const parseCron = (pattern: string): CronExpression => {
  const cached = cache.get(pattern);
  if (cached !== undefined) return cached;
  const fields = cron.parse(pattern);
  // A created task is stopped (no timers) until start(); it is kept for `match`.
  const task = cron.createTask(pattern, () => {}, { timezone: "UTC", name: `tandem-match:${pattern}` });
  const expression = { pattern, fields, task };
  cache.set(pattern, expression);
  return expression;
};

const ascending = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b);

/** The first tick strictly after `after`, or undefined if none within five years. */
export const nextTick = (expression: CronExpression, after: Date): Date | undefined => {
  const seconds = ascending(expression.fields.second);
  const minutes = ascending(expression.fields.minute);
  const hours = ascending(expression.fields.hour);
  const [s0, m0, h0] = [seconds[0], minutes[0], hours[0]];
  if (s0 === undefined || m0 === undefined || h0 === undefined) return undefined;
  const start = Math.floor(after.getTime() / 1000) * 1000 + 1000;
  let dayStart = Math.floor(start / DAY) * DAY;
  for (let d = 0; d < SEARCH_DAYS; d++, dayStart += DAY) {
    // The day's first candidate time matches iff the day (month, day of month, weekday) does.
    if (!expression.task.match(new Date(dayStart + h0 * 3_600_000 + m0 * 60_000 + s0 * 1000))) continue;
    for (const h of hours) {
      if (dayStart + (h + 1) * 3_600_000 <= start) continue;
      for (const m of minutes) {
        if (dayStart + h * 3_600_000 + (m + 1) * 60_000 <= start) continue;
        for (const s of seconds) {
          const ts = dayStart + h * 3_600_000 + m * 60_000 + s * 1000;
          if (ts >= start) return new Date(ts);
        }
      }
    }
  }
  return undefined;
};

/**
 * The latest tick in (after, now], or undefined. After downtime this is the one
 * tick to run: the others were missed and are not replayed one by one.
 */
export const latestTick = (expression: CronExpression, after: Date, now: Date): Date | undefined => {
  if (now <= after) return undefined;
  // Look back over growing windows so dense schedules never walk a long downtime tick by tick.
  for (const window of [60_000, 3_600_000, DAY, 32 * DAY, 366 * DAY, Number.POSITIVE_INFINITY]) {
    const lo = new Date(Math.max(after.getTime(), now.getTime() - window));
    let tick = nextTick(expression, lo);
    if (tick === undefined || tick > now) {
      if (lo.getTime() === after.getTime()) return undefined;
      continue;
    }
    for (let next = nextTick(expression, tick); next !== undefined && next <= now; next = nextTick(expression, next)) {
      tick = next;
    }
    return tick;
  }
  return undefined;
};
