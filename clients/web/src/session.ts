// The signed-in session (kept in localStorage) and the REST calls the SDK's
// store does not make: babies, caregivers, invites. These need the network.

export interface Session {
  baseUrl: string;
  token: string;
  userId: string;
  name: string | null;
}

const KEY = 'babysync.session';

/** Reads `sub` and `name` from a JWT without checking it (the server checks it). */
export function decodeToken(token: string): { sub: string; name: string | null; exp: number | null } {
  const part = token.trim().split('.')[1];
  if (!part) throw new Error('This is not a token (it should have three parts separated by dots).');
  const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
  const claims = JSON.parse(json) as { sub?: unknown; name?: unknown; exp?: unknown };
  if (typeof claims.sub !== 'string' || !claims.sub) throw new Error('The token has no user (sub).');
  return { sub: claims.sub, name: typeof claims.name === 'string' ? claims.name : null, exp: typeof claims.exp === 'number' ? claims.exp : null };
}

export function loadSession(): Session | null {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Session | null;
    return s && s.token && s.userId ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(s: Session | null): void {
  if (s) localStorage.setItem(KEY, JSON.stringify(s));
  else localStorage.removeItem(KEY);
}

export class ApiFailure extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export async function api<T>(s: Session, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(s.baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${s.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiFailure('No connection: this needs the server. Try again when online.', 0);
  }
  const text = await res.text();
  const json = text ? (JSON.parse(text) as unknown) : null;
  if (!res.ok) {
    const err = (json as { error?: { message?: string } } | null)?.error;
    throw new ApiFailure(err?.message ?? `Request failed (${res.status})`, res.status);
  }
  return json as T;
}

export interface Caregiver {
  userId: string;
  displayName: string | null;
  accessLevel: 'owner' | 'editor' | 'viewer';
  since: string;
}

export interface Invite {
  id: string;
  token: string;
  accessLevel: string;
  expiresAt: string;
}

/** The invite link to share: this app's address with the token in the hash. */
export function inviteLink(token: string): string {
  return `${location.origin}${location.pathname}#/invite/${encodeURIComponent(token)}`;
}

/** Takes a pasted invite link or bare token and returns the token. */
export function inviteToken(text: string): string {
  const t = text.trim();
  const m = /#\/invite\/([^/?#\s]+)/.exec(t);
  return m ? decodeURIComponent(m[1]!) : t;
}
