import type { HubSpotContactWire, HubSpotListPage } from "./HubSpotWire.ts";

const networkAttempts = 3;

/**
 * A GET retried on network errors only (an HTTP error status is the caller's business). A
 * client that spends longer on a page than the server keeps an idle keep-alive socket open can
 * race the server closing it; any real client retries that, and so do the baselines.
 */
const fetchWithRetry = async (url: URL, init: RequestInit): Promise<Response> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, init);
    } catch (error) {
      if (attempt >= networkAttempts) {
        const cause = error instanceof Error && error.cause !== undefined ? `: ${String(error.cause)}` : "";
        throw new Error(`GET ${url} failed ${attempt} times${cause}`, { cause: error });
      }
    }
  }
};

/**
 * Pages through `GET /crm/v3/objects/contacts` as a client would: `limit`, then the `after`
 * cursor of each page until a page comes without `paging`. Used by the baselines; Tandem reads
 * the same endpoint through its own HubSpot connector.
 */
export async function* contactPages(
  sourceUrl: string,
  options: { readonly pageSize: number; readonly properties: ReadonlyArray<string>; readonly accessToken: string },
): AsyncGenerator<ReadonlyArray<HubSpotContactWire>> {
  let after: string | undefined;
  do {
    const url = new URL("/crm/v3/objects/contacts", sourceUrl);
    url.searchParams.set("limit", String(options.pageSize));
    url.searchParams.set("properties", options.properties.join(","));
    if (after !== undefined) url.searchParams.set("after", after);
    const response = await fetchWithRetry(url, { headers: { authorization: `Bearer ${options.accessToken}` } });
    if (!response.ok) throw new Error(`source answered ${response.status} to ${url}: ${await response.text()}`);
    const page = (await response.json()) as HubSpotListPage;
    yield page.results;
    after = page.paging?.next?.after;
  } while (after !== undefined);
}

/** Every id the source lists (live records only), for reconciliation. */
export const listContactIds = async (
  sourceUrl: string,
  options: { readonly pageSize: number; readonly accessToken: string },
): Promise<Array<string>> => {
  const ids: Array<string> = [];
  for await (const page of contactPages(sourceUrl, { ...options, properties: ["hs_object_id"] })) {
    for (const contact of page) ids.push(contact.id);
  }
  return ids;
};
