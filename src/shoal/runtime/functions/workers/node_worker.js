// The Node.js action worker: OpenWhisk's action-proxy protocol (POST /init, then POST /run) on loopback.
//
// The same contract as python_worker.py: binds 127.0.0.1 on a free port and writes the port to the file
// descriptor SHOAL_CONTROL_FD names; /init {"value": {"name", "main", "path" | "code", "env"}} requires the file, or the
// directory (its package.json "main" or index.js), ESM through import(); /run {"value", ...} exports
// every other member as __OW_<NAME>, calls main(args, context) and awaits a returned promise; the
// result must be an object. Errors answer 502 with {"error": ...}; the stack goes to stderr.
"use strict";

const fs = require("fs");
const http = require("http");
const os = require("os");
const path = require("path");
const { pathToFileURL } = require("url");

let main = null;

function context(meta) {
  const deadline = Number(meta.deadline || 0);
  return {
    functionName: String(meta.action_name || ""),
    functionVersion: String(meta.action_version || ""),
    activationId: String(meta.activation_id || ""),
    requestId: String(meta.transaction_id || ""),
    deadline,
    apiHost: String(meta.api_host || ""),
    apiKey: String(meta.api_key || ""),
    namespace: String(meta.namespace || ""),
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

async function load(value) {
  let where = value.path;
  if (!where) {
    where = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "action-")), "index.js");
    fs.writeFileSync(where, String(value.code || ""));
  }
  try {
    return require(where);
  } catch (err) {
    if (err && err.code === "ERR_REQUIRE_ESM") {
      return import(pathToFileURL(where).href);
    }
    throw err;
  }
}

async function init(message) {
  if (main !== null) return [403, { error: "Cannot initialize the action more than once." }];
  const value = message.value || {};
  for (const [key, item] of Object.entries(value.env || {})) process.env[key] = String(item);
  const name = value.main || "main";
  let module;
  try {
    module = await load(value);
  } catch (err) {
    console.error(err && err.stack ? err.stack : String(err));
    return [502, { error: `Initialization has failed due to: ${err && err.message ? err.message : err}` }];
  }
  const found = module && (module[name] || (module.default && module.default[name]) ||
    (name === "main" && typeof module === "function" ? module : undefined));
  if (typeof found !== "function") {
    return [502, { error: `Initialization has failed: the action has no function named '${name}'.` }];
  }
  main = found;
  return [200, { ok: true }];
}

async function run(message) {
  if (main === null) return [403, { error: "The action was not initialized." }];
  const args = message.value || {};
  const meta = {};
  for (const [key, item] of Object.entries(message)) {
    if (key === "value") continue;
    meta[key] = item;
    process.env["__OW_" + key.toUpperCase()] = String(item);
  }
  let result;
  try {
    result = await main(args, context(meta));
  } catch (err) {
    console.error(err && err.stack ? err.stack : String(err));
    return [502, { error: `An error has occurred (see logs for details): ${err && err.message ? err.message : err}` }];
  }
  if (result === undefined || result === null) result = {};
  if (typeof result !== "object" || Array.isArray(result)) {
    console.error("The action did not return an object:", result);
    return [502, { error: "The action did not return a dictionary." }];
  }
  return [200, result];
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", async () => {
    let status, answer;
    try {
      const message = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
      const handler = { "/init": init, "/run": run }[req.url];
      [status, answer] = handler ? await handler(message) : [404, { error: "not found" }];
    } catch (err) {
      [status, answer] = [400, { error: "The request body is not JSON." }];
    }
    let data;
    try {
      data = Buffer.from(JSON.stringify(answer));
    } catch (err) {
      [status, data] = [502, Buffer.from(JSON.stringify({ error: "The action did not return a JSON-serializable dictionary." }))];
    }
    res.writeHead(status, { "content-type": "application/json", "content-length": data.length });
    res.end(data);
  });
});
server.keepAliveTimeout = 0;  // the gateway holds one connection for as long as the worker lives

server.listen(0, "127.0.0.1", () => {
  const control = Number(process.env.SHOAL_CONTROL_FD || 3);
  delete process.env.SHOAL_CONTROL_FD;
  fs.writeSync(control, `${server.address().port}\n`);
  fs.closeSync(control);
});
