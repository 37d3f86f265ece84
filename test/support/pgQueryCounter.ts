import type { AddressInfo } from "node:net";
import { createConnection, createServer, type Socket } from "node:net";

/**
 * A TCP proxy in front of PostgreSQL that counts the statements clients execute: each simple
 * Query ('Q') and each Bind ('B', one per execution of an extended-protocol statement, prepared
 * or not) in the frontend protocol. Point a server's DATABASE_URL at `port` to count its queries.
 */
export const startQueryCounter = async (target: { readonly host: string; readonly port: number }) => {
  let statements = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection(target);
    sockets.add(client).add(upstream);
    let buffered = Buffer.alloc(0);
    // The first message (and a refused SSL request's follow-up) is untyped: length, then payload.
    let untyped = true;
    client.on("data", (chunk: Buffer) => {
      upstream.write(chunk);
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (untyped) {
          if (buffered.length < 8) return;
          const length = buffered.readInt32BE(0);
          if (buffered.length < length) return;
          const sslRequest = buffered.readInt32BE(4) === 80877103;
          buffered = buffered.subarray(length);
          untyped = sslRequest;
          continue;
        }
        if (buffered.length < 5) return;
        const length = buffered.readInt32BE(1);
        if (buffered.length < 1 + length) return;
        const type = String.fromCharCode(buffered[0]!);
        if (type === "Q" || type === "B") statements += 1;
        buffered = buffered.subarray(1 + length);
      }
    });
    upstream.on("data", (chunk) => client.write(chunk));
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", close).on("error", close);
    upstream.on("close", close).on("error", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    /** Statements executed through the proxy so far. */
    statements: () => statements,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
};
