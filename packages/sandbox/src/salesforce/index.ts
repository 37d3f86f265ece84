export * from "./OutboundMessage.ts";
export type { SalesforceOAuthApp, SalesforceRequestLogEntry } from "./SalesforceApi.ts";
export { salesforceCollectionMax, salesforceCompositeMax, salesforceDateTime } from "./SalesforceApi.ts";
export * from "./SalesforceFake.ts";
export * from "./SalesforceFaults.ts";
export * from "./SalesforceStore.ts";
export { parseSoql, type SoqlOperator, type SoqlQuery } from "./Soql.ts";
