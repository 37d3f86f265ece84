import type { ScheduleRow } from "../../db/schema.ts";
import { type CronExpression, latestTick, nextTick, parseCron } from "../cronTicks.ts";
import type { ScheduleView } from "../Scheduler.ts";

/** The parsed expression, or undefined when it does not parse. */
export const expressionOf = (pattern: string): CronExpression | undefined => {
  try {
    return parseCron(pattern);
  } catch {
    return undefined;
  }
};

/**
 * The tick a pass should fire: the first one after the last fired, if it is due and
 * at most `toleranceMs` late (each tick gets its job, in order); when it is older,
 * the schedule was down, and only the latest due tick fires: missed ticks run once.
 */
export const dueTick = (expression: CronExpression, last: Date, now: Date, toleranceMs: number): Date | undefined => {
  const next = nextTick(expression, last);
  if (next === undefined || next > now) return undefined;
  if (now.getTime() - next.getTime() <= toleranceMs) return next;
  return latestTick(expression, last, now);
};

/** A schedule row as the API shows it. */
export const toView = (row: ScheduleRow): ScheduleView => {
  const expression = expressionOf(row.cron);
  const next = expression === undefined ? undefined : nextTick(expression, row.last_tick_at);
  return {
    id: row.id,
    name: row.name,
    cron: row.cron,
    kind: row.kind,
    payload: row.payload,
    priority: row.priority,
    connectionId: row.connection_id,
    entity: row.entity,
    paused: row.paused,
    lastTickAt: row.last_tick_at.toISOString(),
    nextTickAt: next?.toISOString() ?? null,
  };
};
