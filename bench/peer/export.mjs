// The peer of dsync-export in `make bench`: what a user would write instead,
// using the official WorkOS Node SDK (@workos-inc/node) and its
// auto-pagination. It walks every directory, its users, its groups and each
// group's members (GET /directory_users?directory=D&group=G, the replacement
// for the deprecated groups array), one list after the other, and writes them
// as JSON lines:
//
//   OUT_DIR/directories.jsonl, directory_users.jsonl, directory_groups.jsonl,
//   directory_group_memberships.jsonl
//
// Environment: WORKOS_API_KEY (required), WORKOS_BASE_URL (default
// https://api.workos.com/; only scheme, host and port are used, as the SDK has
// no path prefix), OUT_DIR (default ./out-peer).
//
// It prints one JSON line with the row counts and the wall time in ms.
//
//   npm ci --prefix bench/peer
//   WORKOS_API_KEY=sk_test_default WORKOS_BASE_URL=http://127.0.0.1:4100/ \
//     OUT_DIR=/tmp/peer node bench/peer/export.mjs
import { WorkOS } from '@workos-inc/node';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';

const apiKey = process.env.WORKOS_API_KEY;
if (!apiKey) {
  console.error('peer: WORKOS_API_KEY is not set: set it to the WorkOS secret key (sk_…)');
  process.exit(2);
}
const base = new URL(process.env.WORKOS_BASE_URL || 'https://api.workos.com/');
const outDir = process.env.OUT_DIR || 'out-peer';

const workos = new WorkOS(apiKey, {
  apiHostname: base.hostname,
  port: base.port ? Number(base.port) : undefined,
  https: base.protocol === 'https:',
});

// jsonl opens OUT_DIR/<name>.jsonl and writes one object per line, waiting
// for the stream to drain so memory stays bounded by the SDK's lists.
function jsonl(name) {
  const stream = createWriteStream(join(outDir, `${name}.jsonl`));
  let rows = 0;
  return {
    async write(obj) {
      rows++;
      if (!stream.write(`${JSON.stringify(obj)}\n`)) await once(stream, 'drain');
    },
    async close() {
      stream.end();
      await once(stream, 'finish');
      return rows;
    },
  };
}

async function main() {
  const start = performance.now();
  await mkdir(outDir, { recursive: true });
  const directoriesOut = jsonl('directories');
  const usersOut = jsonl('directory_users');
  const groupsOut = jsonl('directory_groups');
  const membershipsOut = jsonl('directory_group_memberships');

  const sync = workos.directorySync;
  const directories = await (await sync.listDirectories()).autoPagination();
  for (const directory of directories) {
    await directoriesOut.write(directory);
    const users = await (await sync.listUsers({ directory: directory.id })).autoPagination();
    for (const user of users) await usersOut.write(user);
    const groups = await (await sync.listGroups({ directory: directory.id })).autoPagination();
    for (const group of groups) {
      await groupsOut.write(group);
      const members = await (await sync.listUsers({ directory: directory.id, group: group.id })).autoPagination();
      for (const member of members) {
        await membershipsOut.write({
          directory_id: directory.id,
          organization_id: directory.organizationId,
          group_id: group.id,
          user_id: member.id,
        });
      }
    }
  }

  const summary = {
    directories: await directoriesOut.close(),
    directory_users: await usersOut.close(),
    directory_groups: await groupsOut.close(),
    directory_group_memberships: await membershipsOut.close(),
  };
  summary.wall_ms = Math.round(performance.now() - start);
  summary.sdk_version = workos.version;
  console.log(JSON.stringify(summary));
}

main().catch((err) => {
  console.error(`peer: export failed: ${err?.stack || err}`);
  process.exit(1);
});
