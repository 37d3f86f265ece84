import type { AppRouter } from "@tandem/server";
import { createTRPCClient, httpLink } from "@trpc/client";

/** Tandem's typed client: every call below is checked against the server's `AppRouter`. */
export const tandemClient = (baseUrl: string, apiKey: string) =>
  createTRPCClient<AppRouter>({
    links: [httpLink({ url: `${baseUrl}/trpc`, headers: { authorization: `Bearer ${apiKey}` } })],
  });

export type TandemClient = ReturnType<typeof tandemClient>;
