export * from "./connector.ts";
export * from "./handlers.ts";
export * from "./webhooks.ts";
