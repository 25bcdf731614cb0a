// A real OpenID provider for the browser tests: panva's oidc-provider (certified) on 127.0.0.1 with one
// public client for the SPA (authorization code, PKCE required, no secret), its development login and consent
// pages, RP-initiated logout, and JWT access tokens for the resource indicator `urn:anvil` whose `aud` is
// Anvil's audience and which carry the account's tenant and roles (claims `tenant` and `roles`).
import crypto from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

export const CLIENT_ID = 'anvil-spa';
export const RESOURCE = 'urn:anvil';
export const AUDIENCE = 'anvil';

/** People the provider knows: any password signs them in (the development login page). */
export const ACCOUNTS = {
  carol: { tenant: 'demo', roles: ['labeler'] },
  dave: { tenant: 'demo', roles: ['admin'] },
};

const b64url = (b) => Buffer.from(b).toString('base64url');

/**
 * Starts the provider on `port` for an app at `appUrl`. `accessTokenTtl` (seconds) may be changed while it
 * runs, so a test can get a token that expires soon.
 */
export async function startIdp({ port, appUrl }) {
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'e2e-signing-key', use: 'sig', alg: 'RS256' };
  const settings = { accessTokenTtl: 600 };
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_name: 'Anvil',
      token_endpoint_auth_method: 'none',
      application_type: 'web',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [`${appUrl}/auth/callback`],
      post_logout_redirect_uris: [`${appUrl}/`],
    }],
    pkce: { required: () => true },
    jwks: { keys: [jwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    findAccount: async (_ctx, sub) => (ACCOUNTS[sub] ? { accountId: sub, claims: async () => ({ sub }) } : undefined),
    extraTokenClaims: async (_ctx, token) => {
      const a = ACCOUNTS[token.accountId];
      return a ? { tenant: a.tenant, roles: a.roles } : undefined;
    },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (indicator !== RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: 'anvil',
            audience: AUDIENCE,
            accessTokenFormat: 'jwt',
            accessTokenTTL: settings.accessTokenTtl,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  const server = await new Promise((resolve, reject) => {
    const s = provider.listen(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
  return {
    issuer,
    settings,
    /** Signs claims with the provider's own key (for tokens the provider would never issue to Anvil). */
    sign(claims) {
      const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: jwk.kid }));
      const body = b64url(JSON.stringify(claims));
      const sig = crypto.sign('RSA-SHA256', Buffer.from(`${head}.${body}`), privateKey);
      return `${head}.${body}.${b64url(sig)}`;
    },
    async stop() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
}

/** The claims of a JWT, unverified (to look at what the provider issued). */
export function claimsOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}
