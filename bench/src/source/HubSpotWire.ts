/**
 * A contact as HubSpot's list endpoint returns it (`GET /crm/v3/objects/contacts`): every
 * property value is a string or null, timestamps are ISO-8601 strings.
 */
export interface HubSpotContactWire {
  readonly id: string;
  readonly properties: Record<string, string | null>;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly archived: boolean;
}

/** One page of the list endpoint; there is no `paging` on the last page. */
export interface HubSpotListPage {
  readonly results: ReadonlyArray<HubSpotContactWire>;
  readonly paging?: { readonly next?: { readonly after: string } };
}

/** The properties the bench asks for: what a contacts sync stores. */
export const contactProperties = ["email", "firstname", "lastname", "phone", "lifecyclestage", "jobtitle"] as const;
