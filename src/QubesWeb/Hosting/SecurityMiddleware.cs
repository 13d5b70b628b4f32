namespace QubesWeb.Hosting;

/// <summary>
/// Browser-facing defences of a privileged loopback console: a foreign Origin may not open a Blazor circuit
/// nor any other WebSocket (cross-site WebSocket hijacking), and every response forbids framing, sniffing, referrers and foreign content.
/// </summary>
public static class SecurityMiddleware
{
    private const string Csp =
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

    public static IApplicationBuilder UseQubesWebSecurity(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = Csp;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        headers["Cross-Origin-Opener-Policy"] = "same-origin";
        headers["Cross-Origin-Resource-Policy"] = "same-origin";

        // blazor.web.js first GETs /_blazor/initializers, a same-origin GET without Origin (a public module list): let only it pass.
        var guarded = context.WebSockets.IsWebSocketRequest
            || (context.Request.Path.StartsWithSegments("/_blazor") && !(HttpMethods.IsGet(context.Request.Method) && context.Request.Path == "/_blazor/initializers"));
        if (guarded && !OriginMatches(context.Request))
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await context.Response.WriteAsync("Cross-origin requests to the console are refused.");
            return;
        }
        await next();
    });

    /// <summary>As Cockpit: the Origin must be exactly this server's scheme://host[:port]; a missing one is refused.</summary>
    public static bool OriginMatches(HttpRequest request)
    {
        var origin = request.Headers.Origin.ToString();
        if (string.IsNullOrEmpty(origin) || request.Headers.Origin.Count != 1) return false;
        return string.Equals(origin, $"{request.Scheme}://{request.Host.Value}", StringComparison.OrdinalIgnoreCase);
    }
}
