import {
  type ConnectorWebhooks,
  type InboundWebhookRequest,
  InvalidRecord,
  type WebhookEvent,
} from "@tandem/connector-sdk";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import type { SalesforceConfig } from "./config.ts";

/*
 * Outbound Messages: the only realtime channel Salesforce offers over plain HTTP. A workflow rule
 * or flow posts SOAP 1.1 `notifications` (up to 100 `<Notification>`, each an sObject's id and the
 * fields chosen in the definition) and redelivers, out of order and sometimes twice, for 24 hours
 * until the listener answers `<Ack>true</Ack>`. They fire on create and update, never on delete.
 * See https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_understanding.htm
 */

/** sObject type -> the entity it syncs. Other types' notifications are dropped. */
const entities: Record<string, string> = { Contact: "contacts", Account: "accounts" };

/**
 * Namespaces are dropped (`sf:Id` is `Id`); values stay text (ids are never numbers); entities
 * are not expanded (no DOCTYPE tricks), and every `Notification` is an array, one or many.
 */
const parser = new XMLParser({
  ignoreAttributes: false,
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: false,
  isArray: (name) => name === "Notification",
});

type XmlNode = Record<string, unknown>;

const textOf = (node: unknown): string | undefined => {
  if (typeof node === "string") return node.trim();
  if (typeof node === "object" && node !== null && typeof (node as XmlNode)["#text"] === "string") {
    return ((node as XmlNode)["#text"] as string).trim();
  }
  return undefined;
};

interface OutboundMessage {
  readonly organizationId: string | undefined;
  readonly notifications: ReadonlyArray<XmlNode>;
}

/** The `notifications` element of a SOAP envelope; InvalidRecord when the body is not one. */
const readOutboundMessage = (rawBody: string): OutboundMessage => {
  if (XMLValidator.validate(rawBody) !== true) throw new InvalidRecord({ message: "Outbound Message body is not XML" });
  const document = parser.parse(rawBody) as XmlNode;
  const body = (document?.Envelope as XmlNode | undefined)?.Body as XmlNode | undefined;
  const notifications = body?.notifications as XmlNode | undefined;
  if (typeof notifications !== "object" || notifications === null) {
    throw new InvalidRecord({ message: "not a Salesforce Outbound Message (no soapenv:Body/notifications)" });
  }
  const list = notifications.Notification;
  return {
    organizationId: textOf(notifications.OrganizationId),
    notifications: Array.isArray(list) ? (list as Array<XmlNode>) : [],
  };
};

const dateOf = (node: unknown): Date | undefined => {
  const text = textOf(node);
  if (text === undefined || text === "") return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
};

/**
 * Normalizes an Outbound Message into `updated` events: the entity from the sObject's
 * `xsi:type`, the record id from `sf:Id`, the event id from the Notification's `Id` (stable across
 * redeliveries), and the time from the sObject's SystemModstamp or LastModifiedDate when the
 * definition sends them, else now. The engine then fetches the record (`get`), so the fields sent
 * along do not matter.
 */
export const parseOutboundMessage = (request: InboundWebhookRequest): ReadonlyArray<WebhookEvent> => {
  const message = readOutboundMessage(request.rawBody);
  const events: Array<WebhookEvent> = [];
  for (const notification of message.notifications) {
    const sobject = notification.sObject as XmlNode | undefined;
    const type = textOf(sobject?.["@_type"])?.replace(/^\w+:/, "");
    const entity = type === undefined ? undefined : entities[type];
    const eventId = textOf(notification.Id);
    const externalId = textOf(sobject?.Id);
    if (entity === undefined || eventId === undefined || externalId === undefined || externalId === "") continue;
    events.push({
      eventId,
      entity,
      externalId,
      kind: "updated",
      occurredAt: dateOf(sobject?.SystemModstamp) ?? dateOf(sobject?.LastModifiedDate) ?? new Date(),
    });
  }
  return events;
};

/**
 * True when the message comes from the configured org (`outboundMessageOrgId`; 15- and
 * 18-character ids compare by their first 15 characters, case-sensitively).
 *
 * Outbound Messages carry no signature: Salesforce's model is that the listener trusts the
 * transport instead, by allow-listing Salesforce's IP ranges, by an unguessable secret in the
 * endpoint URL, or by checking Salesforce's client certificate (mutual TLS). Tandem's endpoint
 * path holds the connection id, a UUID; the org id check refuses messages from other orgs (a
 * sandbox pointed at production's endpoint), but it is no secret: keep the endpoint private and
 * allow-list Salesforce's ranges at the proxy. Without `outboundMessageOrgId` every message is refused.
 * See https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_security.htm
 */
export const verifyOutboundMessage = (
  ctx: { readonly config: SalesforceConfig; readonly now: Date },
  request: InboundWebhookRequest,
): boolean => {
  const expected = ctx.config.outboundMessageOrgId;
  if (expected === undefined || request.method.toUpperCase() !== "POST") return false;
  let message: OutboundMessage;
  try {
    message = readOutboundMessage(request.rawBody);
  } catch {
    return false;
  }
  return message.organizationId !== undefined && message.organizationId.slice(0, 15) === expected.slice(0, 15);
};

/** The SOAP answer that stops Salesforce's redelivery of a message. */
export const outboundMessageAck = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
   <Ack>true</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>
`;

/** The connector's `webhooks` member: Outbound Messages, acknowledged with a SOAP Ack once stored. */
export const salesforceWebhooks: ConnectorWebhooks<SalesforceConfig> = {
  verify: verifyOutboundMessage,
  parse: parseOutboundMessage,
  acknowledge: () => ({ status: 200, contentType: "text/xml; charset=utf-8", body: outboundMessageAck }),
};
