export * from "./OutboundMessage.ts";
export type { SalesforceOAuthApp, SalesforceRequestLogEntry } from "./SalesforceApi.ts";
export { salesforceDateTime } from "./SalesforceApi.ts";
export * from "./SalesforceFake.ts";
export * from "./SalesforceFaults.ts";
export * from "./SalesforceStore.ts";
export { parseSoql, type SoqlOperator, type SoqlQuery } from "./Soql.ts";
