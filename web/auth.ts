/**
 * How the page gets its tokens: the gateway's bootstrap route, which answers a
 * local browser without any configuration. When it refuses (401/403: a remote
 * browser, or a gateway with a secret) the person is asked for the secret once;
 * it is kept for this tab only (sessionStorage) and sent with each bootstrap.
 */
import { AuthError, type Bootstrap, bootstrap } from "../src/client/index.ts";
import { byId } from "./dom.ts";

const SECRET_KEY = "agentgate.secret";

function askSecret(message: string): Promise<string> {
  const dialog = byId<HTMLDialogElement>("token-dialog");
  const input = byId<HTMLInputElement>("token-input");
  byId("token-why").textContent = message;
  dialog.showModal();
  return new Promise((resolve) => {
    byId("token-form").addEventListener(
      "submit",
      (e) => {
        e.preventDefault();
        dialog.close();
        resolve(input.value.trim());
      },
      { once: true },
    );
  });
}

/** A fresh bootstrap (single-use WebSocket token, API token, ws_url), asking for the secret while refused. */
export async function freshBootstrap(): Promise<Bootstrap> {
  for (;;) {
    const secret = sessionStorage.getItem(SECRET_KEY) ?? undefined;
    try {
      return await bootstrap({ baseUrl: location.origin, ...(secret && { secret }) });
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      sessionStorage.removeItem(SECRET_KEY);
      const why = secret ? "That token was refused. Try again:" : "This gateway needs a token (its bootstrap secret) from a browser that is not on its machine.";
      sessionStorage.setItem(SECRET_KEY, await askSecret(why));
    }
  }
}
