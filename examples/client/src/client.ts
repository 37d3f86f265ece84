import type { AppRouter } from "@tandem/server";
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink } from "@trpc/client";
import { EventSource } from "eventsource";

/**
 * A Tandem client with end-to-end types from the server's `AppRouter`: queries and
 * mutations over plain HTTP, subscriptions (live job progress) over server-sent events.
 */
export const tandemClient = (baseUrl: string, apiKey: string) => {
  const headers = { authorization: `Bearer ${apiKey}` };
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === "subscription",
        // Node has no EventSource of its own; the eventsource package lets us send the key as a header.
        true: httpSubscriptionLink({
          url: `${baseUrl}/trpc`,
          EventSource,
          eventSourceOptions: () => ({
            fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...headers } }),
          }),
        }),
        false: httpLink({ url: `${baseUrl}/trpc`, headers }),
      }),
    ],
  });
};
