/** Routes of the web console's session API under /console/v1 (admin/console-session.ts). The page itself is a static asset. */
import { Router, type IRequest } from "itty-router";
import * as consoleSession from "../admin/console-session";
import { AdminApiError } from "../http/api-errors";

export const CONSOLE_BASE = "/console/v1";

export function createConsoleRouter() {
  const router = Router<IRequest, [consoleSession.ConsoleContext]>({ base: CONSOLE_BASE });
  router
    .post("/session", (r, ctx) => consoleSession.signIn(ctx, r as unknown as Request))
    .get("/session", (r, ctx) => consoleSession.currentSession(ctx, r as unknown as Request))
    .delete("/session", (r, ctx) => consoleSession.signOut(ctx, r as unknown as Request))
    .all("*", () => {
      throw new AdminApiError(404, "not_found", "no such console endpoint or method");
    });
  return router;
}
