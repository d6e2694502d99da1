// A real OpenID provider for Sandlab's single sign-on tests: oidc-provider (a certified
// OpenID Connect implementation) on loopback, with one client for Sandlab and its
// development login pages (any login name, any password).
//
//   node provider.mjs --port 0 --redirect-uri http://127.0.0.1:8080/api/v1/auth/oidc/test/callback
//
// Options (or the variables in brackets):
//   --port N            [OIDC_PORT]          0 (the default) picks a free port
//   --redirect-uri URL  [OIDC_REDIRECT_URIS] repeatable (comma-separated in the variable)
//   --client-id ID      [OIDC_CLIENT_ID]     default "sandlab"
//   --client-secret S   [OIDC_CLIENT_SECRET] default "sandlab-test-secret"
//
// Prints `issuer <url>` on stdout once it is listening; stops on SIGTERM or SIGINT, and
// with --watch-stdin also when stdin closes (so a test process that dies takes it along).
//
// The person signed in as login name NAME has the claims: sub NAME, preferred_username
// NAME, email NAME@example.test (verified, unless NAME starts with "unverified"), and
// groups ["sandlab-admins"] when NAME starts with "admin", else [].

import http from 'node:http';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'watch-stdin': { type: 'boolean' },
  },
});
const port = Number(args.port ?? process.env.OIDC_PORT ?? 0);
const redirectUris = args['redirect-uri']
  ?? (process.env.OIDC_REDIRECT_URIS ?? '').split(',').filter(Boolean);
if (redirectUris.length === 0) {
  console.error('provider.mjs: give at least one --redirect-uri');
  process.exit(2);
}
const clientId = args['client-id'] ?? process.env.OIDC_CLIENT_ID ?? 'sandlab';
const clientSecret = args['client-secret'] ?? process.env.OIDC_CLIENT_SECRET ?? 'sandlab-test-secret';

function account(id) {
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        preferred_username: id,
        name: id,
        email: `${id}@example.test`,
        email_verified: !id.startsWith('unverified'),
        groups: id.startsWith('admin') ? ['sandlab-admins'] : [],
      };
    },
  };
}

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['preferred_username', 'name', 'groups'],
    },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    findAccount: async (_ctx, id) => account(id),
    cookies: { keys: ['sandlab-test-cookie-key'] },
  });
  // The development pages and keys are the point here: no warnings about them.
  provider.on('server_error', (_ctx, err) => console.error('provider.mjs:', err));
  server.on('request', provider.callback());
  console.log(`issuer ${issuer}`);
});

// A reader that went away must not stop the provider.
process.stdout.on('error', () => {});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (args['watch-stdin']) {
  process.stdin.on('end', stop);
  process.stdin.resume();
}
