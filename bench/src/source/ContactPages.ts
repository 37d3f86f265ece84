import type { HubSpotContactWire, HubSpotListPage } from "./HubSpotWire.ts";

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
    const response = await fetch(url, { headers: { authorization: `Bearer ${options.accessToken}` } });
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
