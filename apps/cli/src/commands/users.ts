import { userInfo } from 'node:os';
import { loadConfig } from '@ledgerflow/config';
import { userDecider, userStream, type UserCommand } from '@ledgerflow/domain-identity';
import { openEmbeddedPlatform } from '@ledgerflow/runtime';
import { ALL_PROJECTIONS } from '@ledgerflow/service-embedded';
import { generatePassword, hashPassword, MIN_PASSWORD_LENGTH } from '@ledgerflow/service-identity';

/**
 * `ledgerflow users reset-password <user> [--admin]` (server stopped): sets a user's password in
 * the data dir, creating the user when absent; the way back in when every admin password is lost.
 * The password comes from LEDGERFLOW_NEW_PASSWORD, or is generated and printed once.
 */
export async function resetPassword(opts: {
  username: string;
  admin: boolean;
  dataDir: string | undefined;
}): Promise<number> {
  const config = loadConfig(process.env, { dataDir: opts.dataDir });
  const given = process.env['LEDGERFLOW_NEW_PASSWORD'];
  if (given !== undefined && given.length < MIN_PASSWORD_LENGTH) {
    console.error(
      `ledgerflow users: LEDGERFLOW_NEW_PASSWORD must be at least ${MIN_PASSWORD_LENGTH} characters`,
    );
    return 2;
  }
  const password = given ?? generatePassword();
  const passwordHash = await hashPassword(password);
  const platform = openEmbeddedPlatform(config, ALL_PROJECTIONS);
  try {
    const stream = userStream(opts.username);
    const { state } = await platform.aggregates.load(stream, userDecider);
    const commands: UserCommand[] = state.exists
      ? [
          { type: 'ChangePassword', username: opts.username, passwordHash },
          ...(opts.admin
            ? [{ type: 'SetAdmin' as const, username: opts.username, isAdmin: true }]
            : []),
        ]
      : [{ type: 'CreateUser', username: opts.username, passwordHash, isAdmin: opts.admin }];
    for (const command of commands)
      await platform.aggregates.execute(
        { stream, decider: userDecider, command },
        {
          actor: `cli:${userInfo().username}`,
          correlationId: 'users-reset-password',
          causationId: null,
        },
      );
    console.log(
      `${state.exists ? 'reset the password of' : 'created'} user '${opts.username}'${opts.admin ? ' (admin)' : ''}` +
        (given === undefined ? `; new password: ${password}` : ''),
    );
    return 0;
  } finally {
    await platform.close();
  }
}
