/**
 * The Node.js flags Tandem runs with (`pnpm start` and the server package's `start` pass them; any
 * other launcher should too, e.g. `NODE_OPTIONS=--max-semi-space-size=8`).
 *
 * `--max-semi-space-size=8` caps V8's young generation at 8 MB semi-spaces. On a machine with
 * plenty of memory V8 grows it to 64 MB semi-spaces, and a bulk import, which allocates a page of
 * 10,000 records at a time and keeps little of it, filled them: 128 MB of the import's 325 MB peak
 * resident set was new space (v8.getHeapSpaceStatistics at the peak). With the cap, the bench's
 * 50,000-contact import peaked at 250 MB instead of 310 to 340 MB, at no cost in throughput
 * (47,570 and 50,494 records/s against 42,557 to 44,224 uncapped; bench/README.md).
 */
export const nodeFlags: ReadonlyArray<string> = ["--max-semi-space-size=8"];
