#!/usr/bin/env bash
# A plugin outside the workspace, as a plugin author has it: the connector template copied into a
# temporary folder, depending on the packed @tandem/connector-sdk and @tandem/testkit tarballs
# (installed with npm, everything else from the npm registry). It must typecheck, pass the
# conformance suite, build, and be loaded by a Tandem server through TANDEM_CONNECTORS.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Node 24 from the workspace (the system Node may be 20, which cannot run the server's TypeScript).
node24_bin=$(dirname "$(readlink -f node_modules/.bin/node)")
export PATH="$node24_bin:$PATH"
pnpm() { npx -y pnpm@12.21.0 "$@"; }

work=$(mktemp -d /tmp/tandem-external-plugin.XXXXXX)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work" "$root"/packages/connector-sdk/dist "$root"/packages/sandbox/dist "$root"/packages/testkit/dist
}
trap cleanup EXIT

echo "external plugin: packing the SDK, the sandbox and the testkit"
for package in connector-sdk sandbox testkit; do
  (cd "packages/$package" && pnpm pack --pack-destination "$work/tarballs" >/dev/null)
done
sdk=$(ls "$work"/tarballs/tandem-connector-sdk-*.tgz)
sandbox=$(ls "$work"/tarballs/tandem-sandbox-*.tgz)
testkit=$(ls "$work"/tarballs/tandem-testkit-*.tgz)

echo "external plugin: a plugin from examples/connector-template in $work/plugin"
mkdir "$work/plugin"
(cd examples/connector-template && tar --exclude=node_modules --exclude=dist -cf - .) | tar -xf - -C "$work/plugin"
# load.test.ts drives @tandem/core's registry, which is not published; the server below loads it instead.
rm "$work/plugin/test/load.test.ts"
node -e '
  const fs = require("node:fs");
  const [file, sdk, sandbox, testkit] = process.argv.slice(1);
  const manifest = JSON.parse(fs.readFileSync(file, "utf8"));
  // What a plugin author writes with published packages: the tarballs stand in for the registry.
  manifest.peerDependencies["@tandem/connector-sdk"] = "^0.1.0";
  delete manifest.devDependencies["@tandem/core"];
  manifest.devDependencies["@tandem/connector-sdk"] = `file:${sdk}`;
  manifest.devDependencies["@tandem/testkit"] = `file:${testkit}`;
  // The testkit depends on the sandbox (the vendor fakes), which the registry would serve.
  manifest.overrides = { "@tandem/sandbox": `file:${sandbox}` };
  fs.writeFileSync(file, JSON.stringify(manifest, null, 2));
' "$work/plugin/package.json" "$sdk" "$sandbox" "$testkit"

cd "$work/plugin"
npm install --no-audit --no-fund --loglevel=error
if [ -e node_modules/@tandem/core ]; then echo "external plugin: @tandem/core was installed; the conformance suite must not need it" >&2; exit 1; fi

echo "external plugin: typecheck"
npm run --silent typecheck
echo "external plugin: conformance suite"
npx vitest run
echo "external plugin: build"
npm run --silent build

echo "external plugin: a Tandem server with TANDEM_CONNECTORS=$work/plugin/dist/index.js"
cd "$root"
TANDEM_DATA_DIR="$work/data" TANDEM_CONNECTORS="$work/plugin/dist/index.js" TANDEM_EGRESS_ALLOW=127.0.0.1 \
  PORT=0 LOG_LEVEL=warn node packages/server/src/main.ts serve >"$work/server.log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 1 120); do
  url=$(sed -n 's/^Tandem listening on \(http[^ ]*\).*/\1/p' "$work/server.log")
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 1
done
[ -n "$url" ] || { echo "external plugin: the server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

# Through the API: a tenant, its key, and a connection to the plugin's connector. The connection's
# config is validated with the plugin's schema, so this fails unless the plugin is loaded.
node --input-type=module - "$url" "$(cat "$work/data/admin.key")" <<'JS'
const [url, admin] = process.argv.slice(2);
const call = async (path, key, body) => {
  const response = await fetch(`${url}/trpc/${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(answer.error ?? answer)}`);
  return answer.result.data;
};
const tenant = await call("tenants.create", admin, { name: "external plugin check" });
const { key } = await call("apiKeys.create", admin, { tenantId: tenant.id, name: "check" });
const connection = await call("connections.create", key, {
  connector: "taskboard",
  name: "taskboard",
  config: { baseUrl: "http://127.0.0.1:9", apiKey: "tb_check" },
});
if (connection.connector !== "taskboard" || connection.config.apiKey !== "[redacted]") {
  throw new Error(`unexpected connection: ${JSON.stringify(connection)}`);
}
console.log(`external plugin: the server loaded "taskboard" (connection ${connection.id})`);
JS
echo "external plugin: ok"
