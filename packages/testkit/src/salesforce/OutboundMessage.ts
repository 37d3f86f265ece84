import type { InboundWebhookRequest } from "@tandem/connector-sdk";
import { type StoredSalesforceRecord, salesforceRecordId } from "./SalesforceStore.ts";

/*
 * Outbound Messages: the SOAP 1.1 notifications a workflow rule or flow posts to a listener,
 * up to 100 `<Notification>` per message; the listener answers `<Ack>true</Ack>` or Salesforce
 * redelivers (for up to 24 hours, out of order, sometimes twice).
 * See https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_understanding.htm
 */

export interface OutboundNotification {
  /** The notification id (`04l...`): the event id receivers deduplicate on. */
  readonly id: string;
  readonly record: StoredSalesforceRecord;
  /** Fields of the record sent along (the outbound message's field selection). Default: every field. */
  readonly fields?: ReadonlyArray<string>;
}

export interface OutboundMessageOptions {
  readonly organizationId: string;
  readonly instanceUrl: string;
  readonly notifications: ReadonlyArray<OutboundNotification>;
  /** The outbound message definition's id (`04k...`). */
  readonly actionId?: string;
  /** A session id for calling back, when the definition sends one. Default none (`xsi:nil`). */
  readonly sessionId?: string;
  readonly apiVersion?: string;
}

const escapeXml = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

/** Outbound messages write datetimes in XML Schema form: `2024-01-15T10:00:00.000Z`. */
const soapValue = (field: string, record: StoredSalesforceRecord): string | undefined => {
  if (field === "Id") return record.Id;
  if (field === "IsDeleted") return String(record.IsDeleted);
  if (field === "CreatedDate" || field === "LastModifiedDate" || field === "SystemModstamp") {
    return new Date(record[field]).toISOString();
  }
  const value = record.fields[field];
  return value === null || value === undefined ? undefined : String(value);
};

let notificationCounter = 0;

/** A fresh notification id (`04l` prefix), unique within the process. */
export const outboundNotificationId = (): string => salesforceRecordId("04l", ++notificationCounter);

/**
 * The SOAP body of an outbound message, as Salesforce posts it.
 *
 * @example
 * const xml = outboundMessageXml({ organizationId: fake.organizationId, instanceUrl: fake.instanceUrl,
 *   notifications: [{ id: outboundNotificationId(), record: fake.store.get("Contact", id)! }] });
 */
export const outboundMessageXml = (options: OutboundMessageOptions): string => {
  const version = (options.apiVersion ?? "v60.0").replace(/^v/, "");
  const notifications = options.notifications
    .map(({ id, record, fields }) => {
      const selected = fields ?? [
        "Id",
        "IsDeleted",
        ...Object.keys(record.fields),
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
      ];
      const values = selected
        .map((field) => {
          const value = soapValue(field, record);
          return value === undefined
            ? `<sf:${field} xsi:nil="true"/>`
            : `<sf:${field}>${escapeXml(value)}</sf:${field}>`;
        })
        .join("\n     ");
      return `   <Notification>
    <Id>${id}</Id>
    <sObject xsi:type="sf:${record.type}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     ${values}
    </sObject>
   </Notification>`;
    })
    .join("\n");
  const session =
    options.sessionId === undefined
      ? `<SessionId xsi:nil="true"/>`
      : `<SessionId>${escapeXml(options.sessionId)}</SessionId>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>${options.organizationId}</OrganizationId>
   <ActionId>${options.actionId ?? "04k5g000000AbCdAAK"}</ActionId>
   ${session}
   <EnterpriseUrl>${options.instanceUrl}/services/Soap/c/${version}/${options.organizationId.slice(0, 15)}</EnterpriseUrl>
   <PartnerUrl>${options.instanceUrl}/services/Soap/u/${version}/${options.organizationId.slice(0, 15)}</PartnerUrl>
${notifications}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>
`;
};

/** An outbound message as an inbound webhook request to `url` (SOAP 1.1: text/xml and a SOAPAction header). */
export const outboundMessageRequest = (url: string, options: OutboundMessageOptions): InboundWebhookRequest => ({
  method: "POST",
  url,
  headers: new Headers({ "content-type": "text/xml; charset=utf-8", soapaction: '""' }),
  rawBody: outboundMessageXml(options),
});
