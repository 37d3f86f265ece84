export * from "./databases.ts";
export * from "./hubspot/index.ts";
