/**
 * The Node.js flags Tandem runs with (`pnpm start` and the server package's `start` pass them; any
 * other launcher should too, e.g. `NODE_OPTIONS="--max-semi-space-size=8 --max-old-space-size=1024"`).
 * V8 sizes its heap from the machine's memory and grows it lazily; a sync worker allocates a lot
 * (a page of 10,000 records at a time) and keeps little, so on a large machine its resident set
 * was mostly garbage V8 had not yet needed to collect. Measured on the bench's imports (bench/README.md):
 *
 * - `--max-semi-space-size=8`: an 8 MB young generation instead of up to 64 MB semi-spaces. At
 *   the peak of a 50,000-contact import, 128 MB of 325 MB resident was new space; with the cap
 *   the import peaked at 250 MB, at the same throughput.
 * - `--max-old-space-size=1024`: a 1 GB old generation, which makes V8 collect before growing it
 *   far. A 300,000-contact import then peaked at 247 to 267 MB instead of 382 to 437 MB, at the same
 *   throughput; its live heap was 66 MB (a heap snapshot at the peak), so 1 GB leaves room for
 *   many syncs at once. Raise it for more concurrent syncs of large pages.
 */
export const nodeFlags: ReadonlyArray<string> = ["--max-semi-space-size=8", "--max-old-space-size=1024"];
