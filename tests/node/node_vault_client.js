// npm node-vault-client against the store's Vault API. Its token auth looks the token up
// (auth/token/lookup-self) and sends data.id as the token from then on: the bundle must come back there.
'use strict';

const { env, steps, statusOf } = require('./common');
const VaultClient = require('node-vault-client');

const client = VaultClient.boot('cvault', {
  api: { url: env('VAULT_ADDR') },
  auth: { type: 'token', config: { token: env('VAULT_TOKEN') } },
  logger: false,
});
const mount = env('MOUNT');
const data = (p) => `${mount}/data/${p}`;
// read() answers a Lease; its data is the Vault reply's data.
const read = async (path) => (await client.read(path)).getData();

steps([
  ['write', async () => (await client.write(data('nvc/s'), { data: { user: 'app', password: 'one' } })).data.version],
  ['write2', async () => (await client.write(data('nvc/s'), { data: { password: 'two' } })).data.version],
  ['read', async () => (await read(data('nvc/s'))).data],
  ['list', async () => (await client.list(`${mount}/metadata/nvc`)).getData().keys],
  ['metadata', async () => Object.keys((await read(`${mount}/metadata/nvc/s`)).versions).sort()],
  ['delete_versions', async () => {
    await client.write(`${mount}/delete/nvc/s`, { versions: [2] });
    return statusOf(client.read(data('nvc/s')));
  }],
  ['undelete', async () => {
    await client.write(`${mount}/undelete/nvc/s`, { versions: [2] });
    return (await read(data('nvc/s'))).data;
  }],
  ['destroy', async () => {
    await client.write(`${mount}/destroy/nvc/s`, { versions: [1] });
    return (await read(`${mount}/metadata/nvc/s`)).versions['1'].destroyed;
  }],
  ['metadata_write', async () => {
    await client.write(`${mount}/metadata/nvc/s`, { custom_metadata: { team: 'b' } });
    return (await read(`${mount}/metadata/nvc/s`)).custom_metadata;
  }],
]).finally(() => VaultClient.clear());
