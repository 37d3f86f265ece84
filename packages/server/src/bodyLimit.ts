import { TRPCError } from "@trpc/server";

const tooLarge = (maxBytes: number) =>
  new TRPCError({
    code: "PAYLOAD_TOO_LARGE",
    message: `request body larger than ${maxBytes} bytes (TANDEM_MAX_BODY_BYTES)`,
  });

/**
 * The request with a body that fails with PAYLOAD_TOO_LARGE (413) once more than `maxBytes` have
 * been read. tRPC reads a body whole before any input schema runs, so without this a 100 MB
 * `sync.push` was parsed in full and exhausted the heap before its `maxItems(1000)` was checked.
 * Bytes are counted as they arrive: a chunked body declares no length, and a declared length
 * above the limit fails at the first read without reading anything.
 *
 * The error is a TRPCError so that tRPC, which rethrows it from `req.text()`, answers in its own
 * error shape with status 413. The source is not cancelled past the limit: cancelling the node
 * request destroys its socket before the 413 is written. After the answer, @hono/node-server
 * discards the unread rest (at most 64 MB or 500 ms, then it closes the connection); a client still
 * writing its body thus reads the 413 instead of a reset (with `connection: close`, a chunked
 * upload met EPIPE before it could).
 */
export const limitBody = (request: Request, maxBytes: number): Request => {
  const source = request.body;
  if (source === null) return request;
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let size = 0;
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (declared > maxBytes) return controller.error(tooLarge(maxBytes));
        reader ??= source.getReader();
        const { done, value } = await reader.read();
        if (done) return controller.close();
        size += value.byteLength;
        if (size > maxBytes) {
          reader.releaseLock();
          return controller.error(tooLarge(maxBytes));
        }
        controller.enqueue(value);
      },
      cancel: (reason) => (reader ?? source).cancel(reason),
    },
    // Pull only when read: nothing is buffered ahead of the consumer.
    { highWaterMark: 0 },
  );
  return new Request(request, { body, duplex: "half" } as RequestInit);
};
