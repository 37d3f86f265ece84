/**
 * Thrown by a Tandem hook of the bench whose engine side does not exist yet. The harness reports
 * the figure as `null` with this message: a missing number, never a made-up one.
 */
export class TandemNotIntegrated extends Error {
  override readonly name = "TandemNotIntegrated";
}
