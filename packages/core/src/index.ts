export * from "./ApiKeys.ts";
export * from "./Connections.ts";
export * from "./Connector.ts";
export * from "./ConnectorRegistry.ts";
export * from "./CredentialCipher.ts";
export * from "./Database.ts";
export type * from "./db/schema.ts";
export * from "./Errors.ts";
export * from "./Tenants.ts";
