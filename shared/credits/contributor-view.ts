/**
 * One row of the public top-contributors list (GET /v1/status `top_contributors`): the identity's
 * public id (a digest of its tab id, as /v1/nodes shows it, useless for impersonating it) and the
 * display name only when the contributor chose one. Credit is the coordinator's count.
 */
export interface TopContributor {
  public_id: string;
  name: string | null;
  credits: number;
  tokens: number;
  jobs: number;
}
