import type { AcmeCrm } from "@tandem/sandbox";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";

const json = (api: AcmeCrm, body: unknown, init: { status?: number } = {}) =>
  HttpResponse.json(body as Record<string, unknown>, { status: init.status ?? 200, headers: rateHeaders(api) });

const rateHeaders = (api: AcmeCrm): Record<string, string> =>
  api.faults.rateLimit === undefined
    ? {}
    : {
        "x-ratelimit-remaining": String(api.faults.rateLimit.remaining),
        "x-ratelimit-reset-ms": String(api.faults.rateLimit.resetMs),
      };

/**
 * MSW handlers serving an AcmeCrm at its base URL. Every request is logged,
 * authenticated (Bearer token), and may be failed by a queued fault.
 */
export const acmeHandlers = (api: AcmeCrm) => {
  const guard = (request: Request, path: string): Response | undefined => {
    const url = new URL(request.url);
    api.requests.push({ method: request.method, path, query: Object.fromEntries(url.searchParams) });
    if (request.headers.get("authorization") !== `Bearer ${api.token}`) {
      return json(api, { error: "unauthorized" }, { status: 401 });
    }
    const failure = api.takeFailure(request.method, path);
    if (failure !== undefined) {
      return HttpResponse.json(
        { error: `injected ${failure.status}` },
        {
          status: failure.status,
          headers: {
            ...rateHeaders(api),
            ...(failure.retryAfter !== undefined ? { "retry-after": failure.retryAfter } : {}),
          },
        },
      );
    }
    return undefined;
  };
  const base = api.baseUrl;
  const limitOf = (url: URL) => Math.min(Number(url.searchParams.get("limit") ?? 100), 1000);

  return [
    http.get(`${base}/contacts/ids`, ({ request }) => {
      const denied = guard(request, "/contacts/ids");
      if (denied) return denied;
      const url = new URL(request.url);
      return json(api, api.ids({ limit: limitOf(url), ...optional("cursor", url.searchParams.get("cursor")) }));
    }),
    http.get(`${base}/contacts`, ({ request }) => {
      const denied = guard(request, "/contacts");
      if (denied) return denied;
      const url = new URL(request.url);
      const page = api.page({
        limit: limitOf(url),
        ...optional("cursor", url.searchParams.get("cursor")),
        ...optional("updatedAfter", url.searchParams.get("updatedAfter")),
      });
      if (api.faults.malformedJson) {
        return new HttpResponse(JSON.stringify(page).slice(0, 40), {
          headers: { "content-type": "application/json", ...rateHeaders(api) },
        });
      }
      return json(api, page);
    }),
    http.get(`${base}/contacts/:id`, ({ request, params }) => {
      const denied = guard(request, `/contacts/${params.id}`);
      if (denied) return denied;
      const contact = api.get(String(params.id));
      return contact === undefined ? json(api, { error: "not found" }, { status: 404 }) : json(api, contact);
    }),
    http.patch(`${base}/contacts/:id`, async ({ request, params }) => {
      const denied = guard(request, `/contacts/${params.id}`);
      if (denied) return denied;
      const changes = (await request.json()) as Record<string, string>;
      const { id: _id, updatedAt: _u, ...allowed } = changes;
      const updated = api.update(String(params.id), allowed);
      return updated === undefined ? json(api, { error: "not found" }, { status: 404 }) : json(api, updated);
    }),
    http.post(`${base}/contacts`, async ({ request }) => {
      const denied = guard(request, "/contacts");
      if (denied) return denied;
      const fields = (await request.json()) as Record<string, string>;
      return json(api, api.create(fields), { status: 201 });
    }),
    http.delete(`${base}/contacts/:id`, ({ request, params }) => {
      const denied = guard(request, `/contacts/${params.id}`);
      if (denied) return denied;
      return api.remove(String(params.id))
        ? new HttpResponse(null, { status: 204 })
        : json(api, { error: "not found" }, { status: 404 });
    }),
  ];
};

const optional = <K extends string>(key: K, value: string | null): { [P in K]?: string } =>
  (value === null ? {} : { [key]: value }) as { [P in K]?: string };

/**
 * Starts an MSW server for `api` that fails any request it has no handler for
 * (`onUnhandledFrame: "error"`, what msw 2 called `onUnhandledRequest`). Call `close()` when the suite ends.
 */
export const startAcmeServer = (api: AcmeCrm) => {
  const server = setupServer(...acmeHandlers(api));
  server.listen({ onUnhandledFrame: "error" });
  return { server, close: () => server.close() };
};
