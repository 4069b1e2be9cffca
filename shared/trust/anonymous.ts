/**
 * A tab that proves no key gets an identity minted for its connection alone (edge/region/
 * tab-channel.ts): `a_` and a random UUID. Such an identity costs nothing and never comes back, so
 * nothing is kept for it (trust rows, learned speeds, credit) and its word counts for nothing
 * another identity must earn (a binding accusation, a confirming report, a canary answer).
 */
export const ANONYMOUS_PREFIX = "a_";

export function isAnonymous(identity: string): boolean {
  return identity.startsWith(ANONYMOUS_PREFIX);
}
