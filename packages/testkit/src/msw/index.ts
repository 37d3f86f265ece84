export * from "./BusinessCentralMsw.ts";
export * from "./HubSpotMsw.ts";
export * from "./requestGate.ts";
export * from "./SalesforceMsw.ts";
