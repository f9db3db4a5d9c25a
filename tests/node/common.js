// Shared by the client scripts: run named steps in order, print one JSON report on stdout.
// A failing step ends the script with exit status 1 and names the step (tests/test_vault_kv_node.py).
'use strict';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

async function steps(list) {
  const report = {};
  for (const [name, fn] of list) {
    try {
      report[name] = await fn();
    } catch (err) {
      const status = err.response ? (err.response.statusCode || err.response.status) : undefined;
      process.stdout.write(JSON.stringify({ failed: name, status, message: String(err.message || err) }) + '\n');
      process.exit(1);
    }
  }
  process.stdout.write(JSON.stringify(report) + '\n');
}

// The HTTP status of a call expected to fail (a read of a deleted version, say).
async function statusOf(promise) {
  try {
    await promise;
    return 200;
  } catch (err) {
    if (!err.response) throw err;
    return err.response.statusCode || err.response.status;
  }
}

module.exports = { env, steps, statusOf };
