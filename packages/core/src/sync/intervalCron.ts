/**
 * The cron expression that ticks every `millis`, aligned to the clock, or undefined when cron
 * cannot say it. A cluster-wide schedule is a cron expression (the Scheduler fires each of its
 * ticks once across processes), so an interval must divide a minute, an hour or a day:
 * `*\/15 * * * *` ticks every 15 minutes at :00, :15, :30, :45, while 45 minutes would tick at
 * :00 and :45, which is not every 45 minutes. Two or more days have no exact cron either (the
 * day of month restarts at 1).
 */
export const intervalCron = (millis: number): string | undefined => {
  if (!Number.isInteger(millis) || millis <= 0 || millis % 1_000 !== 0) return undefined;
  const seconds = millis / 1_000;
  if (seconds < 60) return 60 % seconds === 0 ? `${every(seconds)} * * * * *` : undefined;
  if (seconds % 60 !== 0) return undefined;
  const minutes = seconds / 60;
  if (minutes < 60) return 60 % minutes === 0 ? `${every(minutes)} * * * *` : undefined;
  if (minutes % 60 !== 0) return undefined;
  const hours = minutes / 60;
  if (hours < 24) return 24 % hours === 0 ? `0 ${every(hours)} * * *` : undefined;
  return hours === 24 ? "0 0 * * *" : undefined;
};

const every = (n: number) => (n === 1 ? "*" : `*/${n}`);
