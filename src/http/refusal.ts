/**
 * Every 4xx the gateway answers is JSON `{error, reason}`: clients can always
 * parse why they were refused, from the upgrade path and every route alike.
 */
export function refusal(status: number, error: string, reason: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error, reason }), { status, headers: { "content-type": "application/json", ...headers } });
}
