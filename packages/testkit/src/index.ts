export * from "./acme/index.ts";
export * from "./businesscentral/index.ts";
export * from "./connectorReads.ts";
export * from "./databases.ts";
export * from "./engine.ts";
export * from "./hubspot/index.ts";
export * from "./loopback.ts";
export * from "./salesforce/index.ts";
