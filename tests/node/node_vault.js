// npm node-vault against the store's Vault API: every KV v2 call the package has, lookup-self, health.
'use strict';

const { env, steps, statusOf } = require('./common');
const vault = require('node-vault')({ apiVersion: 'v1', endpoint: env('VAULT_ADDR'), token: env('VAULT_TOKEN') });

const mount = env('MOUNT');
const data = (p) => `${mount}/data/${p}`;

steps([
  ['write', async () => (await vault.write(data('nv/s'), { data: { user: 'app', password: 'one' } })).data.version],
  ['write2', async () => (await vault.write(data('nv/s'), { data: { user: 'app', password: 'two' } })).data.version],
  ['read', async () => (await vault.read(data('nv/s'))).data.data],
  ['read_v1', async () => (await vault.read(`${data('nv/s')}?version=1`)).data.data],
  ['patch', async () => (await vault.update(data('nv/s'), { data: { password: null, extra: 'x' } })).data.version],
  ['list', async () => (await vault.list(`${mount}/metadata/nv`)).data.keys],
  ['metadata', async () => {
    const md = (await vault.read(`${mount}/metadata/nv/s`)).data;
    return { current: md.current_version, versions: Object.keys(md.versions).sort() };
  }],
  ['delete', async () => { await vault.delete(data('nv/s')); return statusOf(vault.read(data('nv/s'))); }],
  ['undelete', async () => {
    await vault.write(`${mount}/undelete/nv/s`, { versions: [3] });
    return (await vault.read(data('nv/s'))).data.data;
  }],
  ['delete_versions', async () => {
    await vault.write(`${mount}/delete/nv/s`, { versions: [1] });
    return statusOf(vault.read(`${data('nv/s')}?version=1`));
  }],
  ['destroy', async () => {
    await vault.write(`${mount}/destroy/nv/s`, { versions: [2] });
    return (await vault.read(`${mount}/metadata/nv/s`)).data.versions['2'].destroyed;
  }],
  ['metadata_write', async () => {
    await vault.write(`${mount}/metadata/nv/s`, { max_versions: 5, custom_metadata: { team: 'a' } });
    const md = (await vault.read(`${mount}/metadata/nv/s`)).data;
    return { max_versions: md.max_versions, custom_metadata: md.custom_metadata };
  }],
  ['delete_metadata', async () => { await vault.delete(`${mount}/metadata/nv/s`); return statusOf(vault.read(data('nv/s'))); }],
  ['lookup_self', async () => { const d = (await vault.tokenLookupSelf()).data; return { same: d.id === env('VAULT_TOKEN'), renewable: d.renewable }; }],
  ['health', async () => { const h = await vault.health(); return { initialized: h.initialized, sealed: h.sealed }; }],
  ['status', async () => (await vault.status()).sealed],
  ['mounts', async () => Object.keys((await vault.mounts()).data).sort()],
]);
