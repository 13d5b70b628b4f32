using QubesWeb.Services.Consoles;

namespace QubesWeb.Hosting;

/// <summary>
/// The console sockets: the serial console's, <c>/qubes/NAME/console/serial</c>, and the graphical console's (RFB for
/// noVNC), <c>/qubes/NAME/console/vnc</c>; <c>?force=1</c> takes the console over. Each sits
/// behind the sign-in door like every page (no session: 401) and the security middleware's Origin rule for every
/// WebSocket (foreign or missing Origin: 403); here a request that is not a WebSocket, or names no qube with a console,
/// is refused before the upgrade. Everything after the upgrade (busy, halted, ended) is said in the close frame, the
/// only thing a page's script can read of it.
/// </summary>
public static class ConsoleEndpoints
{
    public const string SerialPattern = "/qubes/{name}/console/serial";

    public const string GraphicalPattern = "/qubes/{name}/console/vnc";

    /// <summary>A running qube's screen as a PNG picture, never cached (the dashboard asks again every few seconds).</summary>
    public const string ScreenPattern = "/qubes/{name}/screen";

    public static IEndpointRouteBuilder MapConsoles(this IEndpointRouteBuilder app)
    {
        app.Map(SerialPattern, (HttpContext context, string name, SerialConsoles consoles) => SocketAsync(context, name, consoles));
        app.Map(GraphicalPattern, (HttpContext context, string name, GraphicalConsoles consoles) => SocketAsync(context, name, consoles));
        app.MapGet(ScreenPattern, ScreenAsync);
        return app;
    }

    private static async Task ScreenAsync(HttpContext context, string name, QubeScreens screens)
    {
        var (picture, problem) = await screens.TakeAsync(name, context.RequestAborted);
        context.Response.Headers.CacheControl = "no-store";
        if (picture is null)
        {
            await PlainAsync(context, StatusCodes.Status404NotFound, problem!);
            return;
        }
        context.Response.ContentType = picture.MimeType;
        await context.Response.Body.WriteAsync(picture.Data, context.RequestAborted);
    }

    private static async Task SocketAsync(HttpContext context, string name, ConsoleRelays consoles)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await PlainAsync(context, StatusCodes.Status400BadRequest, "This address is a WebSocket: open the console's page, /qubes/NAME/console.");
            return;
        }
        // Checked again here, not only in the security middleware: this socket types into a qube.
        if (!SecurityMiddleware.OriginMatches(context.Request))
        {
            await PlainAsync(context, StatusCodes.Status403Forbidden, "Cross-origin requests to the console are refused.");
            return;
        }
        switch (await consoles.CheckTargetAsync(name, context.RequestAborted))
        {
            case ConsoleTargetProblem.InvalidName:
                await PlainAsync(context, StatusCodes.Status400BadRequest, "That is not a qube's name.");
                return;
            case ConsoleTargetProblem.NoSuchQube:
                await PlainAsync(context, StatusCodes.Status404NotFound, "There is no such qube.");
                return;
            case ConsoleTargetProblem.AdminVm:
                await PlainAsync(context, StatusCodes.Status404NotFound, $"dom0 has no {consoles.What} here.");
                return;
        }
        var force = context.Request.Query["force"] == "1";
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        // Typing into a qube is working in the console: the session does not expire under the user's hands, as it
        // does not while they click in a page (SessionCircuitHandler).
        await consoles.RelayAsync(socket, name, force, context.RequestAborted, UserActivity.Of(context));
    }

    private static Task PlainAsync(HttpContext context, int status, string text)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(text);
    }
}
