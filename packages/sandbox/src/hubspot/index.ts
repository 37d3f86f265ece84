export * from "./FakeClock.ts";
export type { FakeHttpRequest, FakeHttpResponse, HubSpotOAuthApp } from "./HubSpotApi.ts";
export * from "./HubSpotFake.ts";
export * from "./HubSpotFaults.ts";
export * from "./HubSpotLoopback.ts";
export type {
  HubSpotChange,
  HubSpotObjectType,
  HubSpotStore,
  SeedOptions,
  StoredHubSpotObject,
} from "./HubSpotStore.ts";
export { hubSpotObjectSchemas } from "./HubSpotStore.ts";
export * from "./HubSpotWebhookEmitter.ts";
export * from "./HubSpotWebhookSignature.ts";
