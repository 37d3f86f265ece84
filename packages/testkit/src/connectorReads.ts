import { RateLimited, type ReadPage, Unavailable } from "@tandem/connector-sdk";

/**
 * Reads an entity to the end as the engine does under transient failures: after a RateLimited
 * or Unavailable error the read resumes from the last page's cursor (its checkpoint). Other
 * errors are thrown. `onRateLimited` gets each delay (a test advances its fake's clock by it).
 * Answers every page read, repeats after a resume included, and the failures met.
 */
export const readResuming = async (
  read: (cursor: string | undefined) => AsyncIterable<ReadPage>,
  onRateLimited: (retryAfterMs: number) => void = () => {},
): Promise<{
  readonly pages: ReadonlyArray<ReadPage>;
  readonly failures: { readonly rateLimited: number; readonly unavailable: number };
}> => {
  const pages: Array<ReadPage> = [];
  const failures = { rateLimited: 0, unavailable: 0 };
  let cursor: string | undefined;
  for (let done = false; !done; ) {
    try {
      for await (const page of read(cursor)) {
        pages.push(page);
        cursor = page.cursor;
      }
      done = true;
    } catch (error) {
      if (error instanceof RateLimited) {
        failures.rateLimited++;
        onRateLimited(error.retryAfterMs);
      } else if (error instanceof Unavailable) failures.unavailable++;
      else throw error;
    }
  }
  return { pages, failures };
};
