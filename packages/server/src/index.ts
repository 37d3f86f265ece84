export { builtinConnectors } from "./builtins.ts";
export { configFromEnv, loadConfig, type ServerConfig, StartupError } from "./config.ts";
export { createContextInner } from "./context.ts";
export type { AppRouter } from "./routers/_app.ts";
export { appRouter } from "./routers/_app.ts";
export { type AppRuntime, makeRuntime } from "./runtime.ts";
export { nodeFlags } from "./runtimeFlags.ts";
export { type RunningServer, startServer } from "./Server.ts";
export { createCallerFactory } from "./trpc.ts";
