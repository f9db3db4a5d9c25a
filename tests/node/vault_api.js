// npm vault-api against the store's Vault API (its kv2 engine: every method it has).
// vault-api takes a mount to be the path's first segment and finds its engine in sys/internal/ui/mounts:
// the one-segment mount <vault> (the token's org) is exactly that (docs/vault-compat.md).
'use strict';

const { env, steps, statusOf } = require('./common');
const { vault: base } = require('vault-api');

const vault = base.create({
  address: env('VAULT_ADDR'),
  apiVersion: 'v1',
  token: env('VAULT_TOKEN'),
});
const p = (rest) => `${env('VAULT_NAME')}/${rest}`;

steps([
  ['write', async () => (await vault.write(p('va/s'), { user: 'app', password: 'one' })).data.version],
  ['write2', async () => (await vault.write(p('va/s'), { user: 'app', password: 'two' }, { options: { cas: 1 } })).data.version],
  ['read', async () => { const r = await vault.read(p('va/s')); return { ...r.data, version: r.metadata.version }; }],
  ['read_v1', async () => (await vault.read(p('va/s'), { version: 1 })).data.password],
  ['patch', async () => (await vault({ method: 'patch', path: p('va/s'), data: { data: { password: 'three' } } })).data.version],
  ['list', async () => (await vault.list(p('va'))).data.keys],
  ['metadata', async () => Object.keys((await vault({ method: 'readMetadata', path: p('va/s') })).data.versions).sort()],
  ['metadata_write', async () => {
    await vault({ method: 'writeMetadata', path: p('va/s'), data: { custom_metadata: { team: 'c' }, max_versions: 4 } });
    return (await vault({ method: 'readMetadata', path: p('va/s') })).data.max_versions;
  }],
  ['delete', async () => { await vault.delete(p('va/s')); return statusOf(vault.read(p('va/s'))); }],
  ['undelete', async () => {
    await vault({ method: 'undeleteVersions', path: p('va/s'), data: { versions: [3] } });
    return (await vault.read(p('va/s'))).data.password;
  }],
  ['delete_versions', async () => {
    await vault({ method: 'deleteVersions', path: p('va/s'), data: { versions: [2] } });
    return statusOf(vault.read(p('va/s'), { version: 2 }));
  }],
  ['destroy', async () => {
    await vault({ method: 'destroy', path: p('va/s'), data: { versions: [1] } });
    return (await vault({ method: 'readMetadata', path: p('va/s') })).data.versions['1'].destroyed;
  }],
  ['config', async () => {
    await vault({ method: 'setConfig', path: p(''), data: { max_versions: 7 } });
    return (await vault({ method: 'config', path: p('') })).data.max_versions;
  }],
  ['delete_metadata', async () => {
    await vault({ method: 'deleteMetadata', path: p('va/s') });
    return statusOf(vault({ method: 'readMetadata', path: p('va/s') }));
  }],
]);
