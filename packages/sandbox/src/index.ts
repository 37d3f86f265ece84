export * from "./acme/AcmeCrm.ts";
export * from "./businesscentral/index.ts";
export * from "./hubspot/index.ts";
export * from "./LoopbackServer.ts";
export * from "./salesforce/index.ts";
