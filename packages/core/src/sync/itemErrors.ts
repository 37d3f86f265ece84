import type { SyncItemError } from "./SyncJob.ts";

/** One record's failure, as a run's result lists it. */
export const itemError = (
  e: { readonly _tag: string; readonly message: string },
  externalId?: string,
): SyncItemError => ({
  externalId: externalId ?? "unknown",
  type: e._tag,
  message: e.message,
});

/**
 * Item errors of one run, capped: a run over a million bad records must not hold a million
 * errors. Beyond `max`, errors are only counted.
 */
export interface ItemErrors {
  readonly max: number;
  readonly listed: ReadonlyArray<SyncItemError>;
  readonly omitted: number;
}

export const noItemErrors = (max: number): ItemErrors => ({ max, listed: [], omitted: 0 });

/** `errors` with `more` added: listed up to the cap, counted beyond it. */
export const addItemErrors = (errors: ItemErrors, more: ReadonlyArray<SyncItemError>): ItemErrors => {
  if (more.length === 0) return errors;
  const room = Math.max(0, errors.max - errors.listed.length);
  return {
    max: errors.max,
    listed: room === 0 ? errors.listed : [...errors.listed, ...more.slice(0, room)],
    omitted: errors.omitted + Math.max(0, more.length - room),
  };
};

/** The listed errors, and one summary entry for the omitted ones. */
export const itemErrorList = (errors: ItemErrors): ReadonlyArray<SyncItemError> =>
  errors.omitted === 0
    ? errors.listed
    : [
        ...errors.listed,
        { externalId: "*", type: "ErrorsOmitted", message: `${errors.omitted} more item errors not listed` },
      ];
