export * from "@tandem/sandbox";
export * from "./acme/index.ts";
export * from "./connectorReads.ts";
export * from "./databases.ts";
export * from "./egress.ts";
export * from "./engine.ts";
export * from "./loopback.ts";
export * from "./msw/index.ts";
