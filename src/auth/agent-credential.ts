/**
 * Who may connect as a ws agent: a request presenting the configured agent
 * credential (`agent_token`) as a Bearer header or `?token=`. An empty
 * agent_token admits no one.
 */
import { presentedToken, secretEquals } from "./secret.ts";

export function agentAuthorized(req: Request, url: URL, agentToken: string): boolean {
  const token = presentedToken(req, url);
  return agentToken !== "" && token !== "" && secretEquals(token, agentToken);
}
