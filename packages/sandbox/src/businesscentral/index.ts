export type {
  BusinessCentralApp,
  BusinessCentralNotification,
  BusinessCentralSubscription,
} from "./BusinessCentralApi.ts";
export {
  businessCentralBatchMax,
  businessCentralEtag,
  businessCentralScope,
  subscriptionLifetimeMs,
} from "./BusinessCentralApi.ts";
export * from "./BusinessCentralFake.ts";
export * from "./BusinessCentralFaults.ts";
export * from "./BusinessCentralNotifications.ts";
export type {
  BusinessCentralChange,
  BusinessCentralEntitySet,
  BusinessCentralSeedOptions,
  BusinessCentralStore,
  BusinessCentralValue,
  StoredBusinessCentralRecord,
} from "./BusinessCentralStore.ts";
export { businessCentralEntitySets, businessCentralSchemas } from "./BusinessCentralStore.ts";
